using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Copy;

/// <summary>
/// What a destination volume holds, found by trying. Each property is null when the volume holds
/// that kind of thing, otherwise the reason it does not (the refusing call, or what it showed instead).
/// </summary>
public sealed record VolumeTraits
{
    /// <summary>An ext4-like volume: everything held, times to the nanosecond.</summary>
    public static readonly VolumeTraits Full = new();

    public string? Modes { get; init; }

    public string? Owners { get; init; }

    public string? Times { get; init; }

    public string? ExtendedAttributes { get; init; }

    public string? Symlinks { get; init; }

    public string? Fifos { get; init; }

    public string? HardLinks { get; init; }

    /// <summary>
    /// Null where a directory moved to another directory keeps its contents; otherwise why not.
    /// fusefat loses them (the directory arrives empty), so the home is then published entry by entry.
    /// </summary>
    public string? DirectoryRenames { get; init; }

    /// <summary>
    /// FAT-like: no symlinks and no hard links (fusefat, exfat-fuse). Such a volume is copied by one
    /// thread, as cp -a copies it (their FUSE daemons lose the times of one file while another is
    /// written, seen with both, and gain little from more threads), and names that are not UTF-8 are
    /// left out (they store names as UTF-16).
    /// </summary>
    public bool IsFatLike => Symlinks is not null && HardLinks is not null;

    /// <summary>False where the volume rounds times (FAT: 2 s, exfat: 10 ms), so a resumed copy compares them loosely.</summary>
    public bool ExactTimes { get; init; } = true;

    /// <summary>
    /// Whether syncfs(2) makes what was written durable. Not on FUSE: the kernel answers syncfs
    /// without asking the daemon (fs/fuse/inode.c, fuse_sync_fs: only virtiofs implements it), so
    /// bindfs, sshfs or a FAT image through fusefat keep the data in their backing store's cache. There
    /// each file and directory is fsync'ed (FUSE_FSYNC, FUSE_FSYNCDIR), which the daemon passes on.
    /// </summary>
    public bool FlushedBySyncFs { get; init; } = true;
}

/// <summary>
/// Learns a volume's <see cref="VolumeTraits"/> with a handful of calls on scratch entries in a
/// directory the copy owns, once per copy: the copier then skips what the volume cannot do (no
/// failing call per entry, which on a network volume is a round trip each) and counts the loss.
/// </summary>
internal static class VolumeProbe
{
    private const FilePermissions Created = FilePermissions.S_IRUSR | FilePermissions.S_IWUSR;
    private const FilePermissions Changed = Created | FilePermissions.S_IRGRP;

    // A time with odd nanoseconds that every volume can represent to the second.
    private static readonly Stat ProbeTimes = new() { st_atime = 1_600_000_000, st_atime_nsec = 123_456_789, st_mtime = 1_600_000_000, st_mtime_nsec = 123_456_789 };

    private const string Prefix = ".packet-probe-";

    // FUSE_SUPER_MAGIC, linux/magic.h.
    private const long FuseMagic = 0x65735546;

    public static VolumeTraits Probe(IPosix posix, int dirFd, bool owners)
    {
        // A probe killed half-way (with its copy) left its entries: a resumed copy must not publish them.
        var leftovers = new List<string>();
        new DirectoryReader(posix, 16 * 1024).ReadAll(dirFd, entry =>
        {
            if (entry.Name.StartsWith(Prefix, StringComparison.Ordinal))
            {
                leftovers.Add(entry.Name);
            }
        });
        Remove(posix, dirFd, [.. leftovers]);

        bool flushedBySyncFs = posix.FileSystemType(dirFd) != FuseMagic;
        string name = Prefix + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        string[] scratch = [name, name + "-link", name + "-fifo", name + "-hard", name + "-dir", name + "-moved"];
        int fd = posix.OpenAt(dirFd, name, OpenFlags.O_WRONLY | OpenFlags.O_CREAT | OpenFlags.O_EXCL | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC, Created);
        if (fd < 0)
        {
            return VolumeTraits.Full with { FlushedBySyncFs = flushedBySyncFs }; // nothing more can be learned; the copy meets each refusal itself
        }

        try
        {
            var traits = new VolumeTraits
            {
                Modes = Loss(posix, fd, posix.FChmod(fd, Changed), "chmod", s => (s.st_mode & FilePermissions.ALLPERMS) == Changed, s => $"the volume shows mode {Convert.ToString((int)(s.st_mode & FilePermissions.ALLPERMS), 8)} whatever is set"),
                Owners = owners
                    ? Loss(posix, fd, posix.FChown(fd, 1, 1), "chown", s => s.st_uid == 1 && s.st_gid == 1, s => $"the volume shows every entry as owned by {s.st_uid}:{s.st_gid}")
                    : null,
                ExtendedAttributes = Refusal(posix.FSetXattr(fd, "user.packet-probe", [1], 1), "setxattr"),
                Times = Refusal(posix.FUtimens(fd, ProbeTimes), "utimensat"),
            };
            traits = traits with
            {
                ExactTimes = traits.Times is null && posix.FStat(fd, out var timed) >= 0 && timed.st_mtime_nsec == ProbeTimes.st_mtime_nsec,
                FlushedBySyncFs = flushedBySyncFs,
            };
            posix.Close(fd);
            fd = -1;

            return traits with
            {
                Symlinks = Refusal(posix.SymlinkAt(name, dirFd, scratch[1]), "symlink"),
                Fifos = FifoRefusal(posix.MkfifoAt(dirFd, scratch[2], Created)),
                HardLinks = Refusal(posix.LinkAt(dirFd, name, dirFd, scratch[3]), "link"),
                DirectoryRenames = DirectoryRenameLoss(posix, dirFd, scratch[4], scratch[5]),
            };
        }
        finally
        {
            if (fd >= 0)
            {
                posix.Close(fd);
            }

            Remove(posix, dirFd, scratch);
        }
    }

    /// <summary>Moves a directory holding one file to another directory and looks for the file.</summary>
    private static string? DirectoryRenameLoss(IPosix posix, int dirFd, string parent, string moved)
    {
        if (posix.MkdirAt(dirFd, parent, FilePermissions.S_IRWXU) < 0)
        {
            return null;
        }

        int parentFd = posix.OpenAt(dirFd, parent, OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC, 0);
        if (parentFd < 0)
        {
            return null;
        }

        try
        {
            const string Inside = "file";
            if (posix.MkdirAt(parentFd, "sub", FilePermissions.S_IRWXU) < 0)
            {
                return null;
            }

            int subFd = posix.OpenAt(parentFd, "sub", OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC, 0);
            if (subFd < 0)
            {
                return null;
            }

            int file = posix.OpenAt(subFd, Inside, OpenFlags.O_WRONLY | OpenFlags.O_CREAT | OpenFlags.O_EXCL | OpenFlags.O_CLOEXEC, Created);
            posix.Close(subFd);
            if (file < 0)
            {
                return null;
            }

            posix.Close(file);
            if (posix.RenameAt(parentFd, "sub", dirFd, moved, noReplace: false) < 0)
            {
                return null; // the publisher meets the refusal itself
            }

            int movedFd = posix.OpenAt(dirFd, moved, OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC, 0);
            if (movedFd < 0)
            {
                return null;
            }

            // Listed, not looked up: fusefat still answers a lookup of the name from its cache.
            bool listed = false;
            new DirectoryReader(posix, 4096).ReadAll(movedFd, entry => listed |= entry.Name == Inside);
            posix.Close(movedFd);
            return listed ? null : "a directory moved to another directory arrives empty";
        }
        finally
        {
            posix.Close(parentFd);
        }
    }

    private static string? Refusal(long result, string call)
    {
        if (result >= 0)
        {
            return null;
        }

        var errno = PosixException.ErrnoOf(result);
        return ErrnoMeaning.VolumeRefuses(errno) || errno == Errno.EMLINK ? $"{call}: {PosixException.Describe(errno)}" : null;
    }

    private static string? FifoRefusal(int result) =>
        result < 0 && ErrnoMeaning.FifoRefused(PosixException.ErrnoOf(result)) ? $"mknod: {PosixException.Describe(PosixException.ErrnoOf(result))}" : null;

    /// <summary>
    /// The call refused, or it succeeded but the volume does not show its effect (exfat answers chmod,
    /// then shows 0777). Any other failure teaches nothing: the copy meets it entry by entry.
    /// </summary>
    private static string? Loss(IPosix posix, int fd, int result, string call, Func<Stat, bool> kept, Func<Stat, string> why) =>
        result < 0 ? Refusal(result, call)
        : posix.FStat(fd, out var stat) >= 0 && !kept(stat) ? why(stat)
        : null;

    private static void Remove(IPosix posix, int dirFd, string[] names)
    {
        foreach (string name in names)
        {
            TreeRemover.RemoveChild(posix, dirFd, name);
        }
    }
}
