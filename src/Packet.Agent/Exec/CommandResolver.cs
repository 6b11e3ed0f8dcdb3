using System.IO.Abstractions;

namespace Packet.Agent.Exec;

/// <summary>Where a command was found, or why not, with the exit code a shell would give (126, 127).</summary>
public sealed record CommandResolution(string? Path, int ExitCode, string? Failure)
{
    public bool Found => Path is not null;

    public static CommandResolution At(string path) => new(path, 0, null);

    public static CommandResolution NotFound(string why) => new(null, 127, why);

    public static CommandResolution NotExecutable(string why) => new(null, 126, why);
}

/// <summary>
/// Finds a command the way a shell (and execvp) does: a name with a slash is used as it is;
/// otherwise each PATH entry is tried in order (an empty entry is the current directory), and
/// the first executable regular file wins. A match that is not executable gives 126, none 127.
/// </summary>
public sealed class CommandResolver(IFileSystem fileSystem, Func<string, bool> isExecutable)
{
    public CommandResolution Resolve(string command, string? searchPath)
    {
        if (command.Length == 0)
        {
            return CommandResolution.NotFound("the command is empty");
        }

        if (command.Contains('/', StringComparison.Ordinal))
        {
            if (fileSystem.Directory.Exists(command))
            {
                return CommandResolution.NotExecutable($"{command} is a directory");
            }

            if (!fileSystem.File.Exists(command))
            {
                return CommandResolution.NotFound($"{command}: no such file");
            }

            return isExecutable(command) ? CommandResolution.At(command) : CommandResolution.NotExecutable($"{command} is not executable (permission denied)");
        }

        string? notExecutable = null;
        foreach (string directory in (searchPath ?? string.Empty).Split(':'))
        {
            string candidate = fileSystem.Path.Join(directory.Length == 0 ? "." : directory, command);
            if (!fileSystem.File.Exists(candidate))
            {
                continue;
            }

            if (isExecutable(candidate))
            {
                return CommandResolution.At(candidate);
            }

            notExecutable ??= candidate;
        }

        return notExecutable is not null
            ? CommandResolution.NotExecutable($"{notExecutable} is not executable (permission denied)")
            : CommandResolution.NotFound($"{command}: not found in PATH ({searchPath})");
    }
}
