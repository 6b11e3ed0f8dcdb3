using Mono.Unix.Native;

namespace Packet.Agent.Posix;

/// <summary>
/// What an errno means to the agent, in one table, one reason per line (as dotnet/runtime's
/// FileSystem.Unix.cs gives each errno its own branch). Callers ask a question of the table
/// instead of listing errnos of their own.
/// </summary>
public static class ErrnoMeaning
{
    /// <summary>The destination cannot take more: every later write would fail too, so a copy stops.</summary>
    public static bool StopsTheCopy(Errno errno) => errno switch
    {
        Errno.ENOSPC => true, // the volume is full
        Errno.EDQUOT => true, // the user's quota on it is spent
        Errno.EFBIG => true, // past the volume's (or the quota's) largest file
        Errno.EROFS => true, // mounted read-only
        Errno.EIO => true, // the device or the network under it failed
        Errno.ENOMEM or Errno.EMFILE or Errno.ENFILE => true, // the agent itself ran out of memory or descriptors
        _ => false,
    };

    /// <summary>The volume does not hold this kind of metadata or entry at all: the copy goes on without it, as cp -a does.</summary>
    public static bool VolumeRefuses(Errno errno) => errno switch
    {
        Errno.EPERM => true, // no CAP_CHOWN, NFS root_squash, vfat and exfat owners, links on FAT
        Errno.ENOSYS => true, // a FUSE file system without the operation (fusefat's chmod, exfat-fuse's symlink)
        Errno.EOPNOTSUPP => true, // extended attributes or special files the file system does not support
        Errno.EINVAL => true, // an owner id or a time the file system cannot represent
        _ => false,
    };

    /// <summary>
    /// mknod of a FIFO refused. exfat-fuse answers EIO (and leaves a regular file behind), so here EIO
    /// means "not on this volume", not a failing disk: a failing disk stops the next data write anyway.
    /// </summary>
    public static bool FifoRefused(Errno errno) => VolumeRefuses(errno) || errno == Errno.EIO;

    /// <summary>A name this volume cannot hold: the entry is left out, as cp -a leaves it out.</summary>
    public static bool NameRefused(Errno errno) => errno switch
    {
        Errno.EINVAL => true, // characters FAT-like volumes reserve (':', '*', '?', ...)
        Errno.EILSEQ => true, // bytes that are not UTF-8, on a volume that stores UTF-16 names (exfat)
        Errno.ENAMETOOLONG => true, // longer than the volume's limit
        Errno.EPERM => true, // fusefat's answer to a name it cannot store
        Errno.ENOENT => true, // exfat-fuse's answer to a reserved character, in a directory that exists
        _ => false,
    };

    /// <summary>renameat2's flags are not understood: the NFS client (fs/nfs/dir.c, nfs_rename), FUSE without rename2, old kernels.</summary>
    public static bool RenameFlagsUnsupported(Errno errno) => errno is Errno.EINVAL or Errno.ENOSYS;
}
