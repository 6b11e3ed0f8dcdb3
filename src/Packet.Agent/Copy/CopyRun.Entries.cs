using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Copy;

/// <summary>One non-directory entry's copy: regular files (resumed when complete), symlinks, FIFOs, and what is left out.</summary>
internal sealed partial class CopyRun
{
    /// <summary>When an entry's directory may count it as done.</summary>
    private enum Release
    {
        /// <summary>The entry is settled (copied, linked or left out).</summary>
        Now,

        /// <summary>A hard link waiting for its inode's first copy, which releases it (<see cref="LinkWaiters"/>).</summary>
        ByFirstCopy,
    }

    /// <summary>What a create met, when the name was already taken by a previous run's entry.</summary>
    private enum Creation
    {
        Made,
        KeptFromEarlierRun,
        Failed,
    }

    /// <summary>Creates one entry's copy; true when it was made (false: left out, and said why).</summary>
    private delegate bool CreateCopy(DirectoryNode directory, string name, Stat source);

    private Release CopyEntry(DirectoryNode directory, string name, byte type, int attempt)
    {
        if (directory.ExistingFd >= 0 && ExistsIn(directory.ExistingFd, name))
        {
            Interlocked.Increment(ref _report.KeptExisting);
            return Release.Now;
        }

        if (!NameHeld(directory, name))
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
        int result = _posix.LStatAt(directory.SourceFd, name, out var source);
        if (result < 0)
        {
            SourceProblem(DirectoryNode.Join(directory.RelativePath, name), "stat", PosixException.ErrnoOf(result));
            return Release.Now;
        }

        return CopyByStat(directory, name, source, attempt);
    }

    private Release CopyByStat(DirectoryNode directory, string name, in Stat source, int attempt)
    {
        if (attempt > MaxTypeRetries)
        {
            Skipped(ProblemKind.ChangedDuringCopy, DirectoryNode.Join(directory.RelativePath, name), "kept changing type while being copied; left out");
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
                Skipped(ProblemKind.ChangedDuringCopy, DirectoryNode.Join(directory.RelativePath, name), "became a directory while being copied; left out");
                return Release.Now;
        }
    }

    private bool CountLeftOut(LeftOut leftOut)
    {
        switch (leftOut)
        {
            case LeftOut.Socket:
                Interlocked.Increment(ref _report.SkippedSockets);
                return true;
            case LeftOut.Device:
                Interlocked.Increment(ref _report.SkippedDevices);
                return true;
            default:
                return false;
        }
    }

    private Release CopyRegularFile(DirectoryNode directory, string name, int attempt, bool allowLink)
    {
        int sourceFd = _posix.OpenAt(directory.SourceFd, name, ReadFlags, 0);
        if (sourceFd < 0)
        {
            var errno = PosixException.ErrnoOf(sourceFd);
            if (errno is Errno.ELOOP or Errno.ENXIO)
            {
                return CopyByLstat(directory, name, attempt + 1); // a symlink or socket now
            }

            SourceProblem(DirectoryNode.Join(directory.RelativePath, name), "open", errno);
            return Release.Now;
        }

        try
        {
            int statResult = _posix.FStat(sourceFd, out var source);
            if (statResult < 0)
            {
                SourceProblem(DirectoryNode.Join(directory.RelativePath, name), "stat", PosixException.ErrnoOf(statResult));
                return Release.Now;
            }

            if (!IsType(source, FilePermissions.S_IFREG))
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
            _posix.Close(sourceFd);
        }
    }

    private bool WriteRegularFile(int sourceFd, in Stat source, DirectoryNode directory, string name)
    {
        string path = DirectoryNode.Join(directory.RelativePath, name);
        var permissions = source.st_mode & FilePermissions.ACCESSPERMS;
        var size = source.st_size;
        var (seconds, nanoseconds) = (source.st_mtime, source.st_mtime_nsec);

        // Resuming: a file a previous run finished (same size and modification time, which is set last) stays.
        var creation = CreateOverLeftover(
            directory.DestinationFd,
            name,
            path,
            () => _posix.OpenAt(directory.DestinationFd, name, CreateFlags, permissions),
            there => IsType(there, FilePermissions.S_IFREG) && there.st_size == size && SameModificationTime(there, seconds, nanoseconds),
            out int destinationFd);
        if (creation == Creation.KeptFromEarlierRun)
        {
            Interlocked.Increment(ref _report.ResumedFiles);
            return true;
        }

        if (creation == Creation.Failed)
        {
            DestinationProblem(path, "create", PosixException.ErrnoOf(destinationFd));
            return false;
        }

        try
        {
            long copied = _data.Copy(sourceFd, destinationFd, source, _destinationDevice, path);
            if (copied < source.st_size)
            {
                Named(ProblemKind.ChangedDuringCopy, path, $"shrank from {source.st_size} to {copied} bytes while being copied; copied what was there");
            }

            _metadata.ApplyToFile(sourceFd, destinationFd, source, _destinationDevice, path, modeSetAtCreation: CreationKeeps(permissions));
            int complete = destinationFd;
            destinationFd = -1;
            CloseComplete(complete, path);

            Interlocked.Increment(ref _report.Files);
            Interlocked.Add(ref _report.Bytes, copied);
            Interlocked.Add(ref _report.AllocatedBytes, source.st_blocks * 512);
            return true;
        }
        catch (SourceReadException failure)
        {
            _posix.Close(destinationFd);
            destinationFd = -1;
            _posix.UnlinkAt(directory.DestinationFd, name, isDirectory: false);
            SourceProblem(path, "read", failure.Errno);
            return false;
        }
        finally
        {
            CloseIfOpen(destinationFd);
        }
    }

    /// <summary>
    /// Exact where the volume keeps nanoseconds; within the 2 s of FAT's rounding where it does not. A
    /// file cut short by a kill was written after its source's time, so it is still told apart.
    /// </summary>
    private bool SameModificationTime(in Stat there, long seconds, long nanoseconds) =>
        (there.st_mtime == seconds && there.st_mtime_nsec == nanoseconds)
        || (!_volume.ExactTimes && Math.Abs(there.st_mtime - seconds) <= 2);

    private bool CreateSymlink(DirectoryNode directory, string name, Stat source)
    {
        string path = DirectoryNode.Join(directory.RelativePath, name);
        if (_volume.Symlinks is { } refused)
        {
            _report.Losses.Add(LossKind.Symlinks, path, refused);
            return false;
        }

        int read = _posix.ReadLinkAt(directory.SourceFd, name, out string target);
        if (read < 0)
        {
            SourceProblem(path, "read the symlink", PosixException.ErrnoOf(read));
            return false;
        }

        if (CreateOverLeftover(directory.DestinationFd, name, path, () => _posix.SymlinkAt(target, directory.DestinationFd, name), KeepNothing, out int made) == Creation.Failed)
        {
            EntryRefused(path, "create the symlink", PosixException.ErrnoOf(made), LossKind.Symlinks);
            return false;
        }

        _metadata.ApplyToUnopened(directory.DestinationFd, name, source, path);
        Interlocked.Increment(ref _report.Symlinks);
        return true;
    }

    private bool CreateFifo(DirectoryNode directory, string name, Stat source)
    {
        string path = DirectoryNode.Join(directory.RelativePath, name);
        if (_volume.Fifos is { } refused)
        {
            _report.Losses.Add(LossKind.Fifos, path, refused);
            return false;
        }

        var permissions = source.st_mode & FilePermissions.ACCESSPERMS;
        if (CreateOverLeftover(directory.DestinationFd, name, path, () => _posix.MkfifoAt(directory.DestinationFd, name, permissions), KeepNothing, out int made) == Creation.Failed)
        {
            var errno = PosixException.ErrnoOf(made);
            if (!ErrnoMeaning.FifoRefused(errno))
            {
                DestinationProblem(path, "create the FIFO", errno);
                return false;
            }

            // exfat-fuse answers EIO and leaves a regular file of that name: a FIFO's copy must not be one.
            if (_posix.LStatAt(directory.DestinationFd, name, out var left) == 0 && !IsType(left, FilePermissions.S_IFIFO))
            {
                RemoveLeftover(directory.DestinationFd, name, left, path);
            }

            _report.Losses.Add(LossKind.Fifos, path, $"mknod: {PosixException.Describe(errno)}");
            return false;
        }

        _metadata.ApplyToFifo(directory.DestinationFd, name, source, path, modeSetAtCreation: CreationKeeps(permissions));
        Interlocked.Increment(ref _report.Fifos);
        return true;
    }

    private static bool KeepNothing(Stat there) => false;

    /// <summary>
    /// Every create in the copy: when the name is taken, what a previous (killed) run left there is
    /// either kept, when <paramref name="keep"/> says it is already the finished copy, or removed
    /// and the create tried once more. <paramref name="result"/> is create's answer (a descriptor, 0, or -errno).
    /// </summary>
    private Creation CreateOverLeftover(int dirFd, string name, string path, Func<int> create, Func<Stat, bool> keep, out int result)
    {
        result = create();
        if (result < 0 && PosixException.ErrnoOf(result) == Errno.EEXIST)
        {
            if (_posix.LStatAt(dirFd, name, out var there) == 0)
            {
                if (keep(there))
                {
                    return Creation.KeptFromEarlierRun;
                }

                RemoveLeftover(dirFd, name, there, path);
            }

            result = create();
        }

        return result >= 0 ? Creation.Made : Creation.Failed;
    }
}
