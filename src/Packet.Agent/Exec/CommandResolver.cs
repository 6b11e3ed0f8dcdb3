using System.IO.Abstractions;

namespace Packet.Agent.Exec;

/// <summary>Where a command was found, or why not, with the exit code a shell would give (126, 127).</summary>
public sealed record CommandResolution(string? Path, int ExitCode, string? Failure)
{
    public bool Found => Path is not null;

    /// <summary>Programs of that name found earlier on the search path and not run, each with why (see <see cref="ProgramTrust"/>).</summary>
    public IReadOnlyList<string> PassedOver { get; init; } = [];

    /// <summary>One sentence naming what was passed over and why; null when nothing was.</summary>
    public string? PassedOverNote => PassedOver.Count == 0
        ? null
        : $"passed over {string.Join("; ", PassedOver)}: root runs no program another account could have changed";

    public static CommandResolution At(string path) => new(path, 0, null);

    public static CommandResolution NotFound(string why) => new(null, 127, why);

    public static CommandResolution NotExecutable(string why) => new(null, 126, why);
}

/// <summary>
/// Finds a command the way a shell (and execvp) does: a name with a slash is used as it is;
/// otherwise each PATH entry is tried in order (an empty entry is the current directory), and
/// the first executable regular file wins. A match that is not executable gives 126, none 127.
/// A <c>distrust</c> check (<see cref="ProgramTrust"/>) passes over a match it refuses and goes on
/// searching; a refused path given with a slash is not executable for the agent (126).
/// </summary>
public sealed class CommandResolver(IFileSystem fileSystem, Func<string, bool> isExecutable)
{
    /// <param name="command">The command's name, or a path.</param>
    /// <param name="searchPath">PATH.</param>
    /// <param name="distrust">Why a found program must not run; null (or returning null) when it may.</param>
    public CommandResolution Resolve(string command, string? searchPath, Func<string, string?>? distrust = null)
    {
        if (command.Length == 0)
        {
            return CommandResolution.NotFound("the command is empty");
        }

        if (command.Contains('/', StringComparison.Ordinal))
        {
            return ResolvePath(command, distrust);
        }

        string? notExecutable = null;
        var passedOver = new List<string>();
        foreach (string directory in (searchPath ?? string.Empty).Split(':'))
        {
            string candidate = fileSystem.Path.Join(directory.Length == 0 ? "." : directory, command);
            if (!fileSystem.File.Exists(candidate))
            {
                continue;
            }

            if (!isExecutable(candidate))
            {
                notExecutable ??= candidate;
                continue;
            }

            if (distrust?.Invoke(candidate) is { } refusal)
            {
                passedOver.Add($"{candidate} ({refusal})");
                continue;
            }

            return CommandResolution.At(candidate) with { PassedOver = Listed(passedOver) };
        }

        var failure = notExecutable is not null
            ? CommandResolution.NotExecutable($"{notExecutable} is not executable (permission denied)")
            : passedOver.Count > 0
                ? CommandResolution.NotExecutable($"{command}: no copy on PATH may be run by root")
                : CommandResolution.NotFound($"{command}: not found in PATH ({searchPath})");
        return failure with { PassedOver = Listed(passedOver) };
    }

    /// <summary>The list as a resolution keeps it: the one empty list when nothing was passed over, so resolutions compare by value.</summary>
    private static string[] Listed(List<string> passedOver) => passedOver.Count == 0 ? [] : [.. passedOver];

    private CommandResolution ResolvePath(string command, Func<string, string?>? distrust)
    {
        if (fileSystem.Directory.Exists(command))
        {
            return CommandResolution.NotExecutable($"{command} is a directory");
        }

        if (!fileSystem.File.Exists(command))
        {
            return CommandResolution.NotFound($"{command}: no such file");
        }

        if (!isExecutable(command))
        {
            return CommandResolution.NotExecutable($"{command} is not executable (permission denied)");
        }

        return distrust?.Invoke(command) is { } refusal
            ? CommandResolution.NotExecutable($"{command} is not run by root: {refusal}; root runs no program another account could have changed")
            : CommandResolution.At(command);
    }
}
