using Mono.Unix.Native;

namespace Packet.Agent.Posix;

/// <summary>
/// The container's runtime directory (<c>/run/packet-agent</c> for root, <c>/tmp/packet-agent-UID</c>
/// otherwise, or <c>PACKET_RUNTIME_DIR</c>): sshd's config and log, the host keys it loads, the pod's
/// recorded environment, a boot report the volume could not take. Secrets go there, and what is read
/// back from it decides a session's environment, so it is used only when the agent's own user owns
/// it, no one else may read, write or enter it (0700), and no other account can replace it or any
/// folder above it (<see cref="SafePath"/>). Anything else is refused with the reason, never used.
/// </summary>
public static class RuntimeDirectory
{
    private const OpenFlags DirectoryFlags = OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC;

    /// <summary>
    /// Null when <paramref name="path"/> exists and what is in it may be believed: the agent's
    /// user's, writable by no one else (one others may still read is made private by <see cref="Ensure"/>
    /// before a secret goes in); else why not (missing included).
    /// </summary>
    public static string? Refusal(IPosix posix, string path) => Check(posix, path, secrets: false);

    private static string? Check(IPosix posix, string path, bool secrets)
    {
        if (posix.LStatAt(FileModes.AtCurrentDirectory, path, out var entry) >= 0 && entry.st_uid != posix.EffectiveUserId)
        {
            return NotPrivate(path, entry, posix.EffectiveUserId, secrets);
        }

        var owners = TrustedOwners.Of(posix);
        if (SafePath.Refusal(posix, path, owners) is { } unsafePath)
        {
            return $"the runtime directory {NativeName.Display(path)} is not safe to use: {unsafePath}";
        }

        int fd = posix.OpenAt(FileModes.AtCurrentDirectory, path, DirectoryFlags, 0);
        if (fd < 0)
        {
            return $"the runtime directory {NativeName.Display(path)} cannot be opened: {PosixException.Describe(PosixException.ErrnoOf(fd))}";
        }

        try
        {
            PosixException.Check(posix.FStat(fd, out var stat), "stat", path);
            return NotPrivate(path, stat, posix.EffectiveUserId, secrets);
        }
        catch (PosixException e)
        {
            return e.Message;
        }
        finally
        {
            posix.Close(fd);
        }
    }

    /// <summary>
    /// Makes the directory when it is missing (0700, in a parent no other account can change) and
    /// checks it; one the agent's user owns that others could read but never write (an older
    /// agent's 0755) is set to 0700.
    /// Null when it may be used; else why not.
    /// </summary>
    public static string? Ensure(IPosix posix, string path)
    {
        string parent = Path.GetDirectoryName(path.TrimEnd('/')) ?? "/";
        if (posix.LStatAt(FileModes.AtCurrentDirectory, path, out _) < 0)
        {
            if (SafePath.RefusalToCreateIn(posix, parent, TrustedOwners.Of(posix)) is { } unsafeParent)
            {
                return $"the runtime directory {NativeName.Display(path)} cannot be made safely: {unsafeParent}";
            }

            int made = posix.MkdirAt(FileModes.AtCurrentDirectory, path, FileModes.PrivateDirectory);
            if (made < 0 && PosixException.ErrnoOf(made) != Errno.EEXIST)
            {
                return $"the runtime directory {NativeName.Display(path)} cannot be made: {PosixException.Describe(PosixException.ErrnoOf(made))}";
            }
        }

        Tighten(posix, path);
        return Check(posix, path, secrets: true);
    }

    private static void Tighten(IPosix posix, string path)
    {
        int fd = posix.OpenAt(FileModes.AtCurrentDirectory, path, DirectoryFlags, 0);
        if (fd < 0)
        {
            return;
        }

        if (posix.FStat(fd, out var stat) >= 0 && stat.st_uid == posix.EffectiveUserId
            && (stat.st_mode & (FilePermissions.S_IWGRP | FilePermissions.S_IWOTH)) == 0 && (stat.st_mode & FilePermissions.ALLPERMS) != FileModes.PrivateDirectory)
        {
            posix.FChmod(fd, FileModes.PrivateDirectory);
        }

        posix.Close(fd);
    }

    private static string? NotPrivate(string path, in Stat stat, uint self, bool secrets)
    {
        if (stat.st_uid != self)
        {
            return $"the runtime directory {NativeName.Display(path)} belongs to uid {stat.st_uid}, not to the agent's user (uid {self}): another account made it, so nothing in it is used";
        }

        var others = secrets ? FilePermissions.S_IRWXG | FilePermissions.S_IRWXO : FilePermissions.S_IWGRP | FilePermissions.S_IWOTH;
        return (stat.st_mode & others) != 0
            ? $"the runtime directory {NativeName.Display(path)} is mode {SafePath.Mode(stat)}: others may {(secrets ? "look into" : "write")} it, so nothing in it is used (it must be 0700)"
            : null;
    }
}
