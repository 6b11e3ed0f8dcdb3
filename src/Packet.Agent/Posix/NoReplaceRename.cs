using Mono.Unix.Native;

namespace Packet.Agent.Posix;

/// <summary>
/// A rename that never replaces an entry already at the new name, on every volume. It is
/// renameat2(RENAME_NOREPLACE) where the volume understands the flag; where it does not (NFS, most
/// FUSE file systems), the same guarantee comes from calls every volume has. Every caller that must
/// not replace (publishing the home, merging, the report's rotation, moving a home aside) uses this.
/// </summary>
public static class NoReplaceRename
{
    /// <summary>Moves <paramref name="oldName"/> to <paramref name="newName"/>; -EEXIST when something is already there.</summary>
    public static int Move(IPosix posix, int oldDirFd, string oldName, int newDirFd, string newName)
    {
        int renamed = posix.RenameAt(oldDirFd, oldName, newDirFd, newName, noReplace: true);
        if (renamed >= 0 || !ErrnoMeaning.RenameFlagsUnsupported(PosixException.ErrnoOf(renamed)))
        {
            return renamed;
        }

        int found = posix.LStatAt(oldDirFd, oldName, out var entry);
        if (found < 0)
        {
            return found;
        }

        if ((entry.st_mode & FilePermissions.S_IFMT) != FilePermissions.S_IFDIR)
        {
            // link(2) fails with EEXIST atomically, so link-then-unlink never replaces anything. A kill
            // between the two leaves both names on one inode: the next boot finds the target there and
            // keeps it, which is the same data.
            int linked = posix.LinkAt(oldDirFd, oldName, newDirFd, newName);
            if (linked >= 0)
            {
                posix.UnlinkAt(oldDirFd, oldName, isDirectory: false);
                return 0;
            }

            if (PosixException.ErrnoOf(linked) == Errno.EEXIST)
            {
                return linked;
            }
        }

        // Directories, and files on volumes without hard links (FAT): look, then rename. Callers in the
        // workspace hold its lock (the live home is the container's own, which nothing else touches at
        // boot), so no other agent creates the name in between; rename(2) can then only replace what a
        // user process made in that instant, and for a directory only an empty one (a non-empty target
        // fails with ENOTEMPTY, a file with ENOTDIR).
        int there = posix.LStatAt(newDirFd, newName, out _);
        if (there >= 0)
        {
            return -(int)Errno.EEXIST;
        }

        if (PosixException.ErrnoOf(there) != Errno.ENOENT)
        {
            return there;
        }

        return posix.RenameAt(oldDirFd, oldName, newDirFd, newName, noReplace: false);
    }
}
