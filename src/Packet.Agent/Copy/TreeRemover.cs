using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Copy;

/// <summary>Removes a directory tree the agent made (staging), through descriptors, never following a symlink.</summary>
public static class TreeRemover
{
    private const OpenFlags DirectoryFlags = OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC;

    /// <summary>Removes <paramref name="name"/> in <paramref name="parentFd"/> and everything below it; 0 or the negated errno.</summary>
    public static int RemoveChild(IPosix posix, int parentFd, string name)
    {
        var reader = new DirectoryReader(posix, 16 * 1024);
        return Remove(posix, reader, parentFd, name);
    }

    private static int Remove(IPosix posix, DirectoryReader reader, int parentFd, string name)
    {
        int removed = posix.UnlinkAt(parentFd, name, isDirectory: true);
        if (removed >= 0 || !ErrnoMeaning.DirectoryNotEmptied(PosixException.ErrnoOf(removed)))
        {
            if (removed < 0 && PosixException.ErrnoOf(removed) == Errno.ENOTDIR)
            {
                return posix.UnlinkAt(parentFd, name, isDirectory: false);
            }

            return removed;
        }

        int fd = posix.OpenAt(parentFd, name, DirectoryFlags, 0);
        if (fd < 0)
        {
            return fd;
        }

        try
        {
            // A finished directory may be read-only (0555); ours to empty regardless.
            posix.FChmod(fd, FilePermissions.S_IRWXU);
            var entries = new List<DirectoryEntry>();
            int listed = reader.ReadAll(fd, entries.Add);
            if (listed < 0)
            {
                return listed;
            }

            foreach (var entry in entries)
            {
                int result = entry.Type == DirectoryReader.DT_DIR || entry.Type == DirectoryReader.DT_UNKNOWN
                    ? Remove(posix, reader, fd, entry.Name)
                    : posix.UnlinkAt(fd, entry.Name, isDirectory: false);
                if (result < 0 && PosixException.ErrnoOf(result) != Errno.ENOENT)
                {
                    return result;
                }
            }
        }
        finally
        {
            posix.Close(fd);
        }

        return posix.UnlinkAt(parentFd, name, isDirectory: true);
    }
}
