using System.Buffers.Binary;
using System.Text;

namespace Packet.Agent.Ssh;

/// <summary>One public key as authorized_keys holds it: its type, its base64 blob, and a comment.</summary>
public sealed record PublicKey(string Type, string Blob, string Comment)
{
    /// <summary>The key's identity: two lines with the same type and blob are the same key, whatever their comments.</summary>
    public string Identity => $"{Type} {Blob}";

    public string Line => Comment.Length == 0 ? Identity : $"{Identity} {Comment}";
}

/// <summary>Where a key came from, for messages: a variable or a file, and the line.</summary>
public sealed record KeySource(string Name, int Line)
{
    public override string ToString() => $"{Name} line {Line}";
}

/// <summary>The keys the pod gives, and the lines that are not keys (never written, each a warning).</summary>
public sealed record PodKeys(IReadOnlyList<PublicKey> Keys, IReadOnlyList<string> Problems);

/// <summary>
/// Reads public keys as the GPU clouds hand them over: <c>PUBLIC_KEY</c> (RunPod's and Vast's name)
/// and <c>SSH_PUBLIC_KEY</c>, each holding one or several keys (one per line), and the files of a
/// mounted secret directory. A line is a key only if it is <c>TYPE BASE64 [COMMENT]</c> with a
/// known type and a blob that decodes and names that same type inside (as ssh-keygen -l checks):
/// options such as <c>command="..."</c> are refused, so nothing from the pod spec can restrict or
/// redirect a login in ways the user did not write into the home themselves.
/// </summary>
public static class PublicKeys
{
    public static readonly IReadOnlyList<string> Variables = ["PUBLIC_KEY", "SSH_PUBLIC_KEY"];

    private static readonly HashSet<string> KnownTypes = new(StringComparer.Ordinal)
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    };

    /// <summary>Every key of the variables and of the files (in name order); duplicates once, in the order first seen.</summary>
    public static PodKeys Gather(Func<string, string?> variable, IEnumerable<(string Name, string Text)> files)
    {
        var keys = new List<PublicKey>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var problems = new List<string>();
        var sources = Variables.Select(name => (name, variable(name))).Concat(files.OrderBy(f => f.Name, StringComparer.Ordinal).Select(f => (f.Name, (string?)f.Text)));
        foreach (var (name, text) in sources)
        {
            if (string.IsNullOrWhiteSpace(text))
            {
                continue;
            }

            string[] lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
            for (int i = 0; i < lines.Length; i++)
            {
                string line = lines[i].Trim();
                if (line.Length == 0 || line.StartsWith('#'))
                {
                    continue;
                }

                if (Parse(line, out var key, out string? why))
                {
                    if (seen.Add(key.Identity))
                    {
                        keys.Add(key);
                    }
                }
                else
                {
                    problems.Add($"{new KeySource(name, i + 1)}: {why}; left out");
                }
            }
        }

        return new PodKeys(keys, problems);
    }

    /// <summary>One authorized_keys line without options; false and why when it is not one.</summary>
    public static bool Parse(string line, out PublicKey key, out string? why)
    {
        key = new PublicKey(string.Empty, string.Empty, string.Empty);
        string[] fields = line.Split([' ', '\t'], 3, StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length < 2 || !LooksLikeKeyType(fields[0]))
        {
            why = "not a public key (expected TYPE BASE64 [COMMENT], as in a .pub file)";
            return false;
        }

        if (!KnownTypes.Contains(fields[0]))
        {
            why = fields[0].Contains('=', StringComparison.Ordinal) || fields[0].Contains('"', StringComparison.Ordinal)
                ? "options before the key are not taken from the pod (put such a line into ~/.ssh/authorized_keys yourself)"
                : $"unknown key type '{Printable(fields[0])}'";
            return false;
        }

        byte[] blob;
        try
        {
            blob = Convert.FromBase64String(fields[1]);
        }
        catch (FormatException)
        {
            why = "the key's data is not base64 (cut short when it was pasted?)";
            return false;
        }

        // The blob starts with its own type, as a uint32 length and that many bytes.
        if (blob.Length < 4 || BinaryPrimitives.ReadUInt32BigEndian(blob) is var length && length > blob.Length - 4
            || Encoding.ASCII.GetString(blob, 4, (int)length) != fields[0])
        {
            why = $"the key's data is not a {fields[0]} key";
            return false;
        }

        string comment = fields.Length > 2 ? fields[2].Trim() : string.Empty;
        key = new PublicKey(fields[0], fields[1], comment);
        why = null;
        return true;
    }

    /// <summary>
    /// Whether an authorized_keys line lists a key, with or without options before it (sshd's own
    /// format, which a user may write by hand): some field of it starts a valid key.
    /// </summary>
    public static bool IsKeyLine(string line)
    {
        string trimmed = line.Trim();
        if (trimmed.Length == 0 || trimmed.StartsWith('#'))
        {
            return false;
        }

        for (int start = 0; start < trimmed.Length; start++)
        {
            bool fieldStart = start == 0 || trimmed[start - 1] is ' ' or '\t';
            if (fieldStart && KnownTypes.Any(type => trimmed.AsSpan(start).StartsWith(type, StringComparison.Ordinal)) && Parse(trimmed[start..], out _, out _))
            {
                return true;
            }
        }

        return false;
    }

    private static bool LooksLikeKeyType(string field) =>
        field.StartsWith("ssh-", StringComparison.Ordinal) || field.StartsWith("ecdsa-", StringComparison.Ordinal)
        || field.StartsWith("sk-", StringComparison.Ordinal) || field.Contains('=', StringComparison.Ordinal) || field.Contains('"', StringComparison.Ordinal);

    private static string Printable(string text) =>
        new(text.Take(40).Select(c => char.IsControl(c) ? '?' : c).ToArray());
}
