using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Copy;

/// <summary>
/// What every part of one copy shares, and nothing else: the adapter, the options, the report the
/// counts land in, what the destination volume keeps, the umask, the destination's root and device,
/// and the first failure that ends the copy. What goes wrong with one entry is classified here
/// (ErrnoMeaning): left out and named, a loss of the volume's, or the end of the copy.
/// </summary>
internal sealed class CopyContext(IPosix posix, CopyOptions options, CopyReport report, VolumeTraits volume, FilePermissions creationMask, int destinationRootFd, ulong destinationDevice)
{
    private DestinationWriteException? _abort;

    public IPosix Posix => posix;

    public CopyOptions Options => options;

    public CopyReport Report => report;

    public VolumeTraits Volume => volume;

    public int DestinationRootFd => destinationRootFd;

    public ulong DestinationDevice => destinationDevice;

    /// <summary>A destination that cannot take more, or a stop request: nothing more is started.</summary>
    public bool Aborted => Volatile.Read(ref _abort) is not null || options.Stop.IsCancellationRequested;

    /// <summary>The first failure wins; the copy's threads see it and stop.</summary>
    public void Abort(DestinationWriteException failure) => Interlocked.CompareExchange(ref _abort, failure, null);

    /// <summary>Whether a mode given to open(2) or mkfifo(2) survives the umask whole, so no chmod is needed.</summary>
    public bool CreationKeeps(FilePermissions permissions) => (permissions & creationMask) == 0;

    /// <summary>Why the copy ended early, in the report: the failure that stopped it, or the stop request.</summary>
    public void ReportAbort()
    {
        if (Volatile.Read(ref _abort) is { } failure)
        {
            report.FatalError = failure.Message;
            report.OutOfSpace = failure.OutOfSpace;
        }
        else if (options.Stop.IsCancellationRequested)
        {
            report.FatalError = "stopped before it finished";
            report.Stopped = true;
        }
    }

    public void CloseIfOpen(int fd)
    {
        if (fd >= 0)
        {
            posix.Close(fd);
        }
    }

    /// <summary>
    /// Every create in the copy: when the name is taken, what a previous (killed) run left there is
    /// either kept, when <paramref name="keep"/> says it is already the finished copy, or removed
    /// and the create tried once more. <paramref name="result"/> is create's answer (a descriptor, 0, or -errno).
    /// </summary>
    public Creation CreateOverLeftover(int dirFd, string name, string path, Func<int> create, Func<Stat, bool> keep, out int result)
    {
        result = create();
        if (result < 0 && PosixException.ErrnoOf(result) == Errno.EEXIST)
        {
            if (posix.LStatAt(dirFd, name, out var there) == 0)
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

    public void RemoveLeftover(int dirFd, string name, in Stat there, string path)
    {
        int removed = IsType(there, FilePermissions.S_IFDIR)
            ? TreeRemover.RemoveChild(posix, dirFd, name)
            : posix.UnlinkAt(dirFd, name, isDirectory: false);
        if (removed < 0 && PosixException.ErrnoOf(removed) != Errno.ENOENT)
        {
            throw new DestinationWriteException("remove an incomplete copy of", path, PosixException.ErrnoOf(removed));
        }
    }

    public static bool IsType(in Stat stat, FilePermissions type) => (stat.st_mode & FilePermissions.S_IFMT) == type;

    /// <summary>
    /// FAT-like volumes store names as UTF-16, so a name that is not UTF-8 has no faithful form there.
    /// Left out before it is tried: exfat-fuse accepts one holding an encoded surrogate, then dies
    /// listing its directory (as it does under cp -a), which takes the whole volume away.
    /// </summary>
    public bool NameHeld(DirectoryNode directory, string name)
    {
        if (!Volume.IsFatLike || NativeName.IsUtf8(name))
        {
            return true;
        }

        Report.Losses.Add(LossKind.Names, DirectoryNode.Join(directory.RelativePath, name), "not UTF-8, which a FAT-like volume cannot store");
        return false;
    }

    public void SourceProblem(string path, string operation, Errno errno)
    {
        if (errno == Errno.ENOENT)
        {
            Skipped(ProblemKind.ChangedDuringCopy, path, "vanished while being copied");
            return;
        }

        Skipped(ProblemKind.Unreadable, path, $"{operation}: {PosixException.Describe(errno)}; left out");
    }

    public void DestinationProblem(string path, string operation, Errno errno)
    {
        if (ErrnoMeaning.StopsTheCopy(errno))
        {
            throw new DestinationWriteException(operation, path, errno);
        }

        if (ErrnoMeaning.NameRefused(errno))
        {
            Report.Losses.Add(LossKind.Names, path, $"{operation}: {PosixException.Describe(errno)}");
            return;
        }

        Skipped(ProblemKind.NotWritten, path, $"{operation} in the workspace: {PosixException.Describe(errno)}; left out");
    }

    /// <summary>
    /// A symlink or FIFO the volume refused although the probe found it holds them: then it is the
    /// name; without a probe's answer, a refusal of the kind itself.
    /// </summary>
    public void EntryRefused(string path, string operation, Errno errno, LossKind kind)
    {
        if (ErrnoMeaning.VolumeRefuses(errno) && !ErrnoMeaning.NameRefused(errno))
        {
            Report.Losses.Add(kind, path, $"{operation}: {PosixException.Describe(errno)}");
            return;
        }

        DestinationProblem(path, operation, errno);
    }

    public void Skipped(ProblemKind kind, string path, string detail)
    {
        switch (kind)
        {
            case ProblemKind.Unreadable:
                Interlocked.Increment(ref Report.SkippedUnreadable);
                break;
            case ProblemKind.NotWritten:
                Interlocked.Increment(ref Report.NotWritten);
                break;
            default:
                Interlocked.Increment(ref Report.ChangedDuringCopy);
                break;
        }

        Named(kind, path, detail);
    }

    public void Named(ProblemKind kind, string path, string detail)
    {
        var problem = new CopyProblem(kind, path, detail);
        if (Report.AddProblem(problem))
        {
            Options.OnProblem?.Invoke(problem);
        }
    }
}

/// <summary>What a create met, when the name was already taken by a previous run's entry.</summary>
internal enum Creation
{
    Made,
    KeptFromEarlierRun,
    Failed,
}
