using Mono.Unix.Native;

namespace Packet.Agent.Posix;

/// <summary>
/// What an errno means to the agent, in one table, one reason per line (as dotnet/runtime's
/// FileSystem.Unix.cs gives each errno its own branch). Callers ask a question of the table
/// instead of listing errnos of their own. The answers fall in four kinds: fatal (the copy
/// stops), skip the entry (its name or kind cannot be held), degrade metadata (the entry is
/// copied without it) and retry another way (a slower call, or after removing what is in the way).
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

    /// <summary>Fatal, and what an operator frees space for: the volume or the quota is full.</summary>
    public static bool OutOfSpace(Errno errno) => errno is Errno.ENOSPC or Errno.EDQUOT or Errno.EFBIG;

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

    /// <summary>Degrade metadata: this file system has no extended attributes (or no such call).</summary>
    public static bool XattrsUnsupported(Errno errno) => errno is Errno.EOPNOTSUPP or Errno.ENOSYS;

    /// <summary>
    /// Retry with a slower call: an in-kernel copy (copy_file_range, sendfile) refused for this pair of
    /// files, not for this file's data.
    /// </summary>
    public static bool InKernelCopyRefused(Errno errno) => errno switch
    {
        Errno.EXDEV => true, // across file systems (kernels from 5.19 refuse most such pairs)
        Errno.ENOSYS => true, // an old kernel
        Errno.EOPNOTSUPP or Errno.EINVAL or Errno.EBADF => true, // a file system or file kind without in-kernel copies
        Errno.ETXTBSY => true, // a swap file, or one being executed, on some file systems
        _ => false,
    };

    /// <summary>Retry by reading everything: lseek(SEEK_DATA) is not known here (old kernels, some FUSE volumes).</summary>
    public static bool HoleSeekUnsupported(Errno errno) => errno is Errno.EINVAL or Errno.EOPNOTSUPP;

    /// <summary>
    /// Retry after emptying it: rmdir found the directory not empty (ENOTEMPTY or EEXIST, POSIX
    /// allows both; EPERM from fusefat) or not writable (EACCES: a 0555 directory of ours).
    /// </summary>
    public static bool DirectoryNotEmptied(Errno errno) => errno is Errno.ENOTEMPTY or Errno.EEXIST or Errno.EACCES or Errno.EPERM;
}
