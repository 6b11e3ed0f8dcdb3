using Packet.Agent.Posix;

namespace Packet.Agent.Exec;

/// <summary>
/// Which programs the agent may run, as sudo's <c>secure_path</c> and OpenSSH's absolute paths to
/// its helpers decide it: a root agent runs nothing that another account could have changed (the
/// program and every folder above it are root's alone, <see cref="SafePath"/>), and programs of the
/// image (sshd, ssh-keygen, nvidia-smi, the python that makes a root venv) never from the volume,
/// even a part of it root owns. An agent that is not root runs as the user whose files these are:
/// nothing is passed over.
/// </summary>
public sealed class ProgramTrust(IPosix posix)
{
    private bool IsRoot => posix.EffectiveUserId == 0;

    /// <summary>For COMMAND and root's hooks: refuses what another account could have changed; null when nothing is refused.</summary>
    public Func<string, string?>? ForCommand => IsRoot ? Refusal : null;

    /// <summary>For the image's own programs: refuses, besides, anything under <paramref name="workspace"/> (null: no volume).</summary>
    public Func<string, string?>? ForImageProgram(string? workspace) => !IsRoot
        ? null
        : path => workspace is not null && IsUnder(path, workspace)
            ? $"it is on the volume at {workspace}, and root runs the image's own"
            : Refusal(path);

    /// <summary>
    /// For a root process's search paths (PATH, PYTHONPATH): whether a folder may stay on them, when
    /// no other account can change it, or it does not exist and no other account can make it (the
    /// first folder above it that exists is trusted). Always true for an agent that is not root.
    /// </summary>
    public bool MaySearch(string folder)
    {
        if (!IsRoot || Refusal(folder) is null)
        {
            return true;
        }

        // A folder yet to be made (the venv's bin before the venv) is as safe as the first one above it that exists.
        string? missing = Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder));
        if (posix.LStatAt(FileModes.AtCurrentDirectory, missing, out _) >= 0)
        {
            return false;
        }

        while (Path.GetDirectoryName(missing) is { } parent)
        {
            if (posix.LStatAt(FileModes.AtCurrentDirectory, parent, out _) >= 0)
            {
                return Refusal(parent) is null;
            }

            missing = parent;
        }

        return false;
    }

    /// <summary>Why root must not run <paramref name="path"/>, or null when it may.</summary>
    public string? Refusal(string path) => SafePath.Refusal(posix, Path.GetFullPath(path), TrustedOwners.Of(posix));

    private static bool IsUnder(string path, string directory)
    {
        string full = Path.GetFullPath(path);
        string root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        return full == root || full.StartsWith(root + "/", StringComparison.Ordinal);
    }
}
