using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Copy;

/// <summary>One non-directory entry's copy: regular files (resumed when complete), symlinks, FIFOs, and what is left out.</summary>
internal sealed partial class EntryCopier(CopyContext context, FileDataCopier data, MetadataCopier metadata, DirectoryFinisher finisher)
{
    // O_NONBLOCK: a regular file that turned into a FIFO between readdir and open must not hang the copy.
    private const OpenFlags ReadFlags = OpenFlags.O_RDONLY | OpenFlags.O_NOFOLLOW | OpenFlags.O_NONBLOCK | OpenFlags.O_CLOEXEC;
    private const OpenFlags CreateFlags = OpenFlags.O_WRONLY | OpenFlags.O_CREAT | OpenFlags.O_EXCL | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC;
    private const int MaxTypeRetries = 2;

    private readonly HardLinkRegistry _links = new();

    /// <summary>When an entry's directory may count it as done.</summary>
    public enum Release
    {
        /// <summary>The entry is settled (copied, linked or left out).</summary>
        Now,

        /// <summary>A hard link waiting for its inode's first copy, which releases it (<see cref="LinkWaiters"/>).</summary>
        ByFirstCopy,
    }

    /// <summary>Creates one entry's copy; true when it was made (false: left out, and said why).</summary>
    private delegate bool CreateCopy(DirectoryNode directory, string name, Stat source);

    public Release CopyEntry(DirectoryNode directory, string name, byte type, int attempt)
    {
        if (directory.ExistingFd >= 0 && ExistsIn(directory.ExistingFd, name))
        {
            Interlocked.Increment(ref context.Report.KeptExisting);
            return Release.Now;
        }

        if (!context.NameHeld(directory, name))
        {
            return Release.Now;
        }

        if (CountLeftOut(CopyRules.LeftOutByType(type)))
        {
            return Release.Now;
        }

        return type == DirectoryReader.DT_REG
            ? CopyRegularFile(directory, name, attempt, allowLink: true)
            : CopyByLstat(directory, name, attempt);
    }

    private Release CopyByLstat(DirectoryNode directory, string name, int attempt)
    {
        int result = context.Posix.LStatAt(directory.SourceFd, name, out var source);
        if (result < 0)
        {
            context.SourceProblem(DirectoryNode.Join(directory.RelativePath, name), "stat", PosixException.ErrnoOf(result));
            return Release.Now;
        }

        return CopyByStat(directory, name, source, attempt);
    }

    private Release CopyByStat(DirectoryNode directory, string name, in Stat source, int attempt)
    {
        if (attempt > MaxTypeRetries)
        {
            context.Skipped(ProblemKind.ChangedDuringCopy, DirectoryNode.Join(directory.RelativePath, name), "kept changing type while being copied; left out");
            return Release.Now;
        }

        if (CountLeftOut(CopyRules.LeftOutByType(source.st_mode)))
        {
            return Release.Now;
        }

        switch (source.st_mode & FilePermissions.S_IFMT)
        {
            case FilePermissions.S_IFREG:
                return CopyRegularFile(directory, name, attempt + 1, allowLink: true);
            case FilePermissions.S_IFLNK:
                return CopyWithHardLinks(directory, name, source, CreateSymlink);
            case FilePermissions.S_IFIFO:
                return CopyWithHardLinks(directory, name, source, CreateFifo);
            default:
                context.Skipped(ProblemKind.ChangedDuringCopy, DirectoryNode.Join(directory.RelativePath, name), "became a directory while being copied; left out");
                return Release.Now;
        }
    }

    private bool CountLeftOut(LeftOut leftOut)
    {
        switch (leftOut)
        {
            case LeftOut.Socket:
                Interlocked.Increment(ref context.Report.SkippedSockets);
                return true;
            case LeftOut.Device:
                Interlocked.Increment(ref context.Report.SkippedDevices);
                return true;
            default:
                return false;
        }
    }

    private Release CopyRegularFile(DirectoryNode directory, string name, int attempt, bool allowLink)
    {
        int sourceFd = context.Posix.OpenAt(directory.SourceFd, name, ReadFlags, 0);
        if (sourceFd < 0)
        {
            var errno = PosixException.ErrnoOf(sourceFd);
            if (errno is Errno.ELOOP or Errno.ENXIO)
            {
                return CopyByLstat(directory, name, attempt + 1); // a symlink or socket now
            }

            context.SourceProblem(DirectoryNode.Join(directory.RelativePath, name), "open", errno);
            return Release.Now;
        }

        try
        {
            int statResult = context.Posix.FStat(sourceFd, out var source);
            if (statResult < 0)
            {
                context.SourceProblem(DirectoryNode.Join(directory.RelativePath, name), "stat", PosixException.ErrnoOf(statResult));
                return Release.Now;
            }

            if (!CopyContext.IsType(source, FilePermissions.S_IFREG))
            {
                return CopyByStat(directory, name, source, attempt + 1);
            }

            if (!allowLink)
            {
                WriteRegularFile(sourceFd, source, directory, name);
                return Release.Now;
            }

            return CopyWithHardLinks(directory, name, source, (d, n, s) => WriteRegularFile(sourceFd, s, d, n));
        }
        finally
        {
            context.Posix.Close(sourceFd);
        }
    }

    private bool WriteRegularFile(int sourceFd, in Stat source, DirectoryNode directory, string name)
    {
        string path = DirectoryNode.Join(directory.RelativePath, name);
        var permissions = source.st_mode & FilePermissions.ACCESSPERMS;
        var size = source.st_size;
        var (seconds, nanoseconds) = (source.st_mtime, source.st_mtime_nsec);

        // Resuming: a file a previous run finished (same size and modification time, which is set last) stays.
        var creation = context.CreateOverLeftover(
            directory.DestinationFd,
            name,
            path,
            () => context.Posix.OpenAt(directory.DestinationFd, name, CreateFlags, permissions),
            there => CopyContext.IsType(there, FilePermissions.S_IFREG) && there.st_size == size && SameModificationTime(there, seconds, nanoseconds),
            out int destinationFd);
        if (creation == Creation.KeptFromEarlierRun)
        {
            Interlocked.Increment(ref context.Report.ResumedFiles);
            return true;
        }

        if (creation == Creation.Failed)
        {
            context.DestinationProblem(path, "create", PosixException.ErrnoOf(destinationFd));
            return false;
        }

        try
        {
            long copied = data.Copy(sourceFd, destinationFd, source, context.DestinationDevice, path);
            if (copied < source.st_size)
            {
                context.Named(ProblemKind.ChangedDuringCopy, path, $"shrank from {source.st_size} to {copied} bytes while being copied; copied what was there");
            }

            metadata.ApplyToFile(sourceFd, destinationFd, source, context.DestinationDevice, path, modeSetAtCreation: context.CreationKeeps(permissions));
            int complete = destinationFd;
            destinationFd = -1;
            finisher.CloseComplete(complete, path);

            Interlocked.Increment(ref context.Report.Files);
            Interlocked.Add(ref context.Report.Bytes, copied);
            Interlocked.Add(ref context.Report.AllocatedBytes, source.st_blocks * 512);
            return true;
        }
        catch (SourceReadException failure)
        {
            context.Posix.Close(destinationFd);
            destinationFd = -1;
            context.Posix.UnlinkAt(directory.DestinationFd, name, isDirectory: false);
            context.SourceProblem(path, "read", failure.Errno);
            return false;
        }
        finally
        {
            context.CloseIfOpen(destinationFd);
        }
    }

    /// <summary>
    /// Exact where the volume keeps nanoseconds; within the 2 s of FAT's rounding where it does not. A
    /// file cut short by a kill was written after its source's time, so it is still told apart.
    /// </summary>
    private bool SameModificationTime(in Stat there, long seconds, long nanoseconds) =>
        (there.st_mtime == seconds && there.st_mtime_nsec == nanoseconds)
        || (!context.Volume.ExactTimes && Math.Abs(there.st_mtime - seconds) <= 2);

    private bool CreateSymlink(DirectoryNode directory, string name, Stat source)
    {
        string path = DirectoryNode.Join(directory.RelativePath, name);
        if (context.Volume.Symlinks is { } refused)
        {
            context.Report.Losses.Add(LossKind.Symlinks, path, refused);
            return false;
        }

        int read = context.Posix.ReadLinkAt(directory.SourceFd, name, out string target);
        if (read < 0)
        {
            context.SourceProblem(path, "read the symlink", PosixException.ErrnoOf(read));
            return false;
        }

        if (context.CreateOverLeftover(directory.DestinationFd, name, path, () => context.Posix.SymlinkAt(target, directory.DestinationFd, name), KeepNothing, out int made) == Creation.Failed)
        {
            context.EntryRefused(path, "create the symlink", PosixException.ErrnoOf(made), LossKind.Symlinks);
            return false;
        }

        metadata.ApplyToUnopened(directory.DestinationFd, name, source, path);
        Interlocked.Increment(ref context.Report.Symlinks);
        return true;
    }

    private bool CreateFifo(DirectoryNode directory, string name, Stat source)
    {
        string path = DirectoryNode.Join(directory.RelativePath, name);
        if (context.Volume.Fifos is { } refused)
        {
            context.Report.Losses.Add(LossKind.Fifos, path, refused);
            return false;
        }

        var permissions = source.st_mode & FilePermissions.ACCESSPERMS;
        if (context.CreateOverLeftover(directory.DestinationFd, name, path, () => context.Posix.MkfifoAt(directory.DestinationFd, name, permissions), KeepNothing, out int made) == Creation.Failed)
        {
            var errno = PosixException.ErrnoOf(made);
            if (!ErrnoMeaning.FifoRefused(errno))
            {
                context.DestinationProblem(path, "create the FIFO", errno);
                return false;
            }

            // exfat-fuse answers EIO and leaves a regular file of that name: a FIFO's copy must not be one.
            if (context.Posix.LStatAt(directory.DestinationFd, name, out var left) == 0 && !CopyContext.IsType(left, FilePermissions.S_IFIFO))
            {
                context.RemoveLeftover(directory.DestinationFd, name, left, path);
            }

            context.Report.Losses.Add(LossKind.Fifos, path, $"mknod: {PosixException.Describe(errno)}");
            return false;
        }

        metadata.ApplyToFifo(directory.DestinationFd, name, source, path, modeSetAtCreation: context.CreationKeeps(permissions));
        Interlocked.Increment(ref context.Report.Fifos);
        return true;
    }

    private static bool KeepNothing(Stat there) => false;

    private bool ExistsIn(int dirFd, string name)
    {
        int result = context.Posix.LStatAt(dirFd, name, out _);
        // Anything but "not there" counts as there: an existing home is never overwritten.
        return result >= 0 || PosixException.ErrnoOf(result) != Errno.ENOENT;
    }
}
