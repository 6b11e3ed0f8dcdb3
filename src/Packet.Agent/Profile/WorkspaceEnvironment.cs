namespace Packet.Agent.Profile;

/// <summary>One variable the workspace sets: a directory put first on PATH, or a default for a variable.</summary>
public sealed record WorkspaceVariable(string Name, string Value, bool PrependsToPath)
{
    /// <summary>
    /// The line in the managed block. A PATH entry is added only when absent, so it appears once
    /// however shells nest and whatever COMMAND's PATH (or the image's ENV PATH) already holds.
    /// Defaults yield to a value the pod already sets.
    /// </summary>
    public string ShellLine => PrependsToPath
        ? $"case \":${Name}:\" in *\":{Value}:\"*) ;; *) export {Name}=\"{Value}:${Name}\" ;; esac"
        : Name == "PYTHONPATH"
            ? $"export PYTHONPATH=\"{Value}${{PYTHONPATH:+:$PYTHONPATH}}\""
            : $"export {Name}=\"${{{Name}:-{Value}}}\"";
}

/// <summary>
/// What the workspace adds to every shell (through the managed block) and to COMMAND's
/// environment: <c>/workspace/bin</c> on PATH always; the persisted venv's bin when there is (or is
/// about to be) one; and, for directories people persist, the variables that point tools at them.
/// One list, so the block, the hooks and COMMAND never disagree.
/// </summary>
public static class WorkspaceEnvironment
{
    /// <param name="workspace">The workspace's path, which the variables name.</param>
    /// <param name="exists">Whether an entry exists, by its name relative to the workspace (the open workspace's <c>Exists</c>).</param>
    public static IReadOnlyList<WorkspaceVariable> For(string workspace, Func<string, bool> exists)
    {
        string In(string relative) => Path.Join(workspace, relative);
        var variables = new List<WorkspaceVariable> { new("PATH", In("bin"), PrependsToPath: true) };
        if (exists("venv") || exists("requirements.txt"))
        {
            variables.Add(new("PATH", In("venv/bin"), PrependsToPath: true));
        }

        (string Variable, string Directory)[] persisted =
        [
            ("HF_HOME", ".cache/huggingface"),
            ("PIP_CACHE_DIR", ".cache/pip"),
            ("CONDA_ENVS_DIRS", "envs"),
            ("PYTHONPATH", "pip-packages"),
        ];
        foreach (var (variable, directory) in persisted)
        {
            if (exists(directory))
            {
                variables.Add(new(variable, In(directory), PrependsToPath: false));
            }
        }

        return variables;
    }

    /// <summary>
    /// COMMAND's environment, which SSH sessions get too: the agent's own (the pod's) with the
    /// workspace's variables applied, when there is a workspace.
    /// </summary>
    /// <param name="process">The agent's environment.</param>
    /// <param name="workspace">The workspace's path and an existence check relative to it; null without a workspace.</param>
    public static SortedDictionary<string, string> ForCommand(System.Collections.IDictionary process, (string Path, Func<string, bool> Exists)? workspace)
    {
        var variables = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (System.Collections.DictionaryEntry variable in process)
        {
            variables[(string)variable.Key] = (string?)variable.Value ?? string.Empty;
        }

        if (workspace is { } present)
        {
            Apply(variables, For(present.Path, present.Exists));
        }

        return variables;
    }

    /// <summary>Applies the variables to an environment (COMMAND's, a hook's): PATH entries first and once, defaults only where unset.</summary>
    public static void Apply(IDictionary<string, string> environment, IEnumerable<WorkspaceVariable> variables)
    {
        foreach (var variable in variables)
        {
            string? current = environment.TryGetValue(variable.Name, out var value) && value.Length > 0 ? value : null;
            if (variable.PrependsToPath)
            {
                environment[variable.Name] = PrependOnce(current ?? DefaultPath, variable.Value);
            }
            else if (variable.Name == "PYTHONPATH")
            {
                environment[variable.Name] = current is null ? variable.Value : PrependOnce(current, variable.Value);
            }
            else if (current is null)
            {
                environment[variable.Name] = variable.Value;
            }
        }
    }

    /// <summary>What a login shell would have when PATH is unset.</summary>
    public const string DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /// <summary>Puts <paramref name="directory"/> first in a colon-separated list, once (a second boot in the same shell must not stack it).</summary>
    public static string PrependOnce(string list, string directory) =>
        string.Join(':', new[] { directory }.Concat(list.Split(':').Where(entry => entry != directory)));
}
