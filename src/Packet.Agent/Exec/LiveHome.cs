using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Exec;

/// <summary>What was done so that COMMAND and every later shell use the persisted home.</summary>
/// <param name="HomeForCommand">HOME to give COMMAND, when the live home could not be linked; null to leave HOME alone.</param>
/// <param name="Summary">What happened, for the log.</param>
/// <param name="IsWarning">True when the operator has something to fix.</param>
public sealed record HomeWiring(string? HomeForCommand, string Summary, bool IsWarning = false);

/// <summary>
/// Wires the live home (<c>--home</c>, say <c>/root</c>) to the persisted one. The bash script filled
/// <c>/workspace/home</c> but nothing made the container use it. As root, when the live home is an
/// ordinary directory of the container's own file system, it is moved aside (to
/// <c>HOME.packet-image</c>, never deleted) and replaced by a symlink to the persisted home, so every
/// shell (kubectl exec, ssh, Jupyter terminals) lands there. Otherwise COMMAND gets
/// <c>HOME=/workspace/home</c>, and the log says why and how to wire it for every shell.
/// </summary>
public sealed class LiveHome(IPosix posix, Func<string, bool> isMountPoint)
{
    public const string ImageSuffix = ".packet-image";
    private const int AtCurrentDirectory = -100;

    public HomeWiring Wire(string liveHome, string persistedHome)
    {
        int found = posix.LStatAt(AtCurrentDirectory, liveHome, out var live);
        if (found >= 0 && posix.LStatAt(AtCurrentDirectory, persistedHome, out var persisted) >= 0
            && IsType(live, FilePermissions.S_IFDIR) && live.st_dev == persisted.st_dev && live.st_ino == persisted.st_ino)
        {
            return new HomeWiring(null, $"{liveHome} already is the persisted home (the volume is mounted there)");
        }

        if (found >= 0 && IsType(live, FilePermissions.S_IFLNK))
        {
            posix.ReadLinkAt(AtCurrentDirectory, liveHome, out string target);
            return target == persistedHome
                ? new HomeWiring(null, $"{liveHome} already links to {persistedHome}")
                : Fallback(liveHome, persistedHome, $"{liveHome} is a symlink to {target}, which the agent does not replace");
        }

        if (posix.EffectiveUserId != 0)
        {
            return Fallback(liveHome, persistedHome, "the agent is not root, so it cannot replace the live home");
        }

        if (found >= 0 && !IsType(live, FilePermissions.S_IFDIR))
        {
            return Fallback(liveHome, persistedHome, $"{liveHome} is not a directory");
        }

        if (found >= 0 && isMountPoint(liveHome))
        {
            return Fallback(liveHome, persistedHome, $"{liveHome} is a mount point, not the container's own directory");
        }

        string? movedTo = null;
        if (found >= 0)
        {
            movedTo = AsideName(liveHome);
            int moved = posix.RenameAt(AtCurrentDirectory, liveHome, AtCurrentDirectory, movedTo, noReplace: true);
            if (moved < 0)
            {
                return Fallback(liveHome, persistedHome, $"moving it aside failed: {PosixException.Describe(PosixException.ErrnoOf(moved))}");
            }
        }

        int linked = posix.SymlinkAt(persistedHome, AtCurrentDirectory, liveHome);
        if (linked < 0)
        {
            var errno = PosixException.ErrnoOf(linked);
            if (movedTo is not null)
            {
                posix.RenameAt(AtCurrentDirectory, movedTo, AtCurrentDirectory, liveHome, noReplace: true); // put it back
            }

            return Fallback(liveHome, persistedHome, $"creating the link failed: {PosixException.Describe(errno)}");
        }

        return new HomeWiring(null, movedTo is null
            ? $"linked {liveHome} to {persistedHome}"
            : $"linked {liveHome} to {persistedHome}; the image's home was moved to {movedTo}");
    }

    private static HomeWiring Fallback(string liveHome, string persistedHome, string why) => new(
        persistedHome,
        $"HOME={persistedHome} for the command only: {why}. Shells started another way (kubectl exec) still get {liveHome}; "
        + $"to wire them too, mount the volume's home at {liveHome} (a subPath mount, see container/k8s/pod-init-container.yaml) or run the agent as root",
        IsWarning: true);

    private string AsideName(string liveHome)
    {
        string aside = liveHome + ImageSuffix;
        return posix.LStatAt(AtCurrentDirectory, aside, out _) < 0
            ? aside
            : $"{aside}-{DateTime.UtcNow:yyyyMMddTHHmmssZ}";
    }

    private static bool IsType(in Stat stat, FilePermissions type) => (stat.st_mode & FilePermissions.S_IFMT) == type;
}

/// <summary>Whether a path is a mount point, from the kernel's own table (<c>/proc/self/mountinfo</c>).</summary>
public static class MountTable
{
    public static bool IsMountPoint(string path)
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/self/mountinfo"))
            {
                // Fields: id parent major:minor root MOUNTPOINT options ...; spaces in paths are \040.
                var fields = line.Split(' ');
                if (fields.Length > 4 && Unescape(fields[4]) == path)
                {
                    return true;
                }
            }

            return false;
        }
        catch (IOException)
        {
            return false; // no /proc: treat it as the container's own directory
        }
    }

    private static string Unescape(string field)
    {
        if (!field.Contains('\\', StringComparison.Ordinal))
        {
            return field;
        }

        var text = new System.Text.StringBuilder(field.Length);
        for (int i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && i + 3 < field.Length && IsOctal(field[i + 1]) && IsOctal(field[i + 2]) && IsOctal(field[i + 3]))
            {
                text.Append((char)(((field[i + 1] - '0') * 64) + ((field[i + 2] - '0') * 8) + (field[i + 3] - '0')));
                i += 3;
            }
            else
            {
                text.Append(field[i]);
            }
        }

        return text.ToString();
    }

    private static bool IsOctal(char c) => c is >= '0' and <= '7';
}
