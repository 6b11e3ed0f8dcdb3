namespace Packet.Agent.Profile;

/// <summary>
/// The managed block in the persisted <c>.bashrc</c> that puts <c>/workspace/bin</c> on PATH (and the
/// rest of <see cref="WorkspaceEnvironment"/>), in the
/// style of conda's <c># &gt;&gt;&gt; conda initialize &gt;&gt;&gt;</c>: found by its marker lines, replaced in
/// place when its content differs, appended when absent, never written twice. The bash script's
/// legacy lines are recognised and replaced by the block, so PATH never gets a second entry.
/// Pure text in, text out: no file access here.
/// </summary>
public static class ManagedBlock
{
    public const string Start = "# >>> packet-persist >>>";
    public const string End = "# <<< packet-persist <<<";
    public const string LegacyMarker = "# packet-persist marker";
    public const string LegacyExport = "export PATH=\"/workspace/bin:$PATH\"";

    /// <summary>Set by the agent's sshd for every session: the PATH COMMAND gets (see <see cref="PodPathLine"/>).</summary>
    public const string PodPathVariable = "PACKET_POD_PATH";

    /// <summary>
    /// An SSH login runs /etc/profile, which sets PATH anew and drops the image's entries
    /// (<c>/usr/local/cuda/bin</c>, say); the pod's PATH, handed over by sshd, is put back first.
    /// Outside SSH sessions the variable is unset and the line does nothing.
    /// </summary>
    public const string PodPathLine = "[ -n \"${" + PodPathVariable + ":-}\" ] && case \":$PATH:\" in *\":$" + PodPathVariable + ":\"*) ;; *) export PATH=\"$" + PodPathVariable + ":$PATH\" ;; esac";

    /// <param name="variables">The exports, in order.</param>
    /// <param name="bannerFiles">
    /// The files the agents write when a boot had warnings (root's, and the home's user's): an
    /// interactive shell prints each, with a pointer to <c>packet-agent status</c>. Testing for a non-empty file is a shell builtin, so a
    /// shell after a clean boot pays nothing and prints nothing. The file's text is printed through
    /// <c>cat -v</c>, so no control character in it (an escape sequence retitling the terminal,
    /// say) reaches the terminal; printf, not echo, so no backslash in it is interpreted.
    /// </param>
    public static string Render(IEnumerable<WorkspaceVariable> variables, params string[] bannerFiles)
    {
        var lines = new List<string> { Start, PodPathLine };
        lines.AddRange(variables.Select(v => v.ShellLine));
        foreach (string bannerFile in bannerFiles)
        {
            lines.Add($"case $- in *i*) [ -s \"{bannerFile}\" ] && printf 'packet-agent: %s; run: packet-agent status\\n' \"$(head -c 512 \"{bannerFile}\" | cat -v)\" >&2;; esac");
        }

        lines.Add(End);
        return string.Join('\n', lines);
    }

    /// <summary>
    /// Returns <paramref name="text"/> with exactly one managed block setting <paramref name="variables"/>:
    /// the first block (or legacy pair) replaced in place, any others removed, or one appended.
    /// Returns the same string instance when nothing needs to change.
    /// </summary>
    public static string Apply(string text, IEnumerable<WorkspaceVariable> variables, params string[] bannerFiles)
    {
        var lines = SplitLines(text);
        var block = Render(variables, bannerFiles).Split('\n');
        var result = new List<string>();
        bool placed = false;
        for (int i = 0; i < lines.Count; i++)
        {
            int span = BlockLength(lines, i);
            if (span == 0)
            {
                result.Add(lines[i]);
                continue;
            }

            if (!placed)
            {
                result.AddRange(block);
                placed = true;
            }

            i += span - 1;
        }

        if (!placed)
        {
            if (result.Count > 0 && result[^1].Length > 0)
            {
                result.Add(string.Empty); // a blank line between the user's content and the block
            }

            result.AddRange(block);
        }

        // The block is always there now, so the file always ends with a newline.
        string updated = string.Join('\n', result) + "\n";
        return updated == text ? text : updated;
    }

    /// <summary>How many lines starting at <paramref name="index"/> form a managed block or the legacy pair; 0 if none.</summary>
    private static int BlockLength(List<string> lines, int index)
    {
        string line = lines[index].TrimEnd();
        if (line == LegacyMarker)
        {
            // The bash script wrote the marker comment, then its export on the next line.
            return index + 1 < lines.Count && lines[index + 1].Trim() == LegacyExport ? 2 : 1;
        }

        if (line != Start)
        {
            return 0;
        }

        for (int j = index + 1; j < lines.Count; j++)
        {
            string inner = lines[j].TrimEnd();
            if (inner == End)
            {
                return j - index + 1;
            }

            if (inner == Start)
            {
                return j - index; // an unterminated block: it ends where the next one starts
            }
        }

        // Unterminated and last: the start line, and the next line only if it is a PATH line of ours.
        return index + 1 < lines.Count && IsOurExport(lines[index + 1]) ? 2 : 1;
    }

    /// <summary>A PATH line of the block: the guarded form, or the plain export of earlier versions.</summary>
    private static bool IsOurExport(string line)
    {
        string trimmed = line.Trim();
        bool plain = trimmed.StartsWith("export PATH=\"", StringComparison.Ordinal)
            && trimmed.EndsWith("/bin:$PATH\"", StringComparison.Ordinal)
            && trimmed.Count(c => c == '"') == 2;
        bool guarded = trimmed.StartsWith("case \":$PATH:\" in *\":", StringComparison.Ordinal)
            && trimmed.EndsWith("/bin:$PATH\" ;; esac", StringComparison.Ordinal);
        return plain || guarded;
    }

    private static List<string> SplitLines(string text)
    {
        if (text.Length == 0)
        {
            return [];
        }

        var lines = text.Split('\n').ToList();
        if (text.EndsWith('\n'))
        {
            lines.RemoveAt(lines.Count - 1);
        }

        return lines;
    }
}
