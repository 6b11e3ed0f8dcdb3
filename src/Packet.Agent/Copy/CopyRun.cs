using System.Collections.Concurrent;
using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Copy;

/// <summary>
/// One copy of a tree (TreeCopier's work): the scheduler. One walker thread lists directories and
/// creates them (CopyRun.Walk.cs); workers copy every other entry in parallel (CopyRun.Entries.cs,
/// hard links in CopyRun.HardLinks.cs); what goes wrong is classified in CopyRun.Problems.cs. A
/// destination that cannot take more, or a stop request, aborts the whole run.
/// </summary>
internal sealed partial class CopyRun
{
    private const OpenFlags DirectoryFlags = OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC;

    // O_NONBLOCK: a regular file that turned into a FIFO between readdir and open must not hang the copy.
    private const OpenFlags ReadFlags = OpenFlags.O_RDONLY | OpenFlags.O_NOFOLLOW | OpenFlags.O_NONBLOCK | OpenFlags.O_CLOEXEC;
    private const OpenFlags CreateFlags = OpenFlags.O_WRONLY | OpenFlags.O_CREAT | OpenFlags.O_EXCL | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC;
    private const FilePermissions PrivateDirectoryMode = FilePermissions.S_IRWXU;
    private const int QueueCapacity = 4096;
    private const int MaxTypeRetries = 2;

    private readonly IPosix _posix;
    private readonly CopyOptions _options;
    private readonly CopyReport _report;
    private readonly int _destinationRootFd;
    private readonly FileDataCopier _data;
    private readonly MetadataCopier _metadata;
    private readonly HardLinkRegistry _links = new();
    private readonly DirectoryReader _reader;
    private readonly BlockingCollection<CopyJob>? _queue;
    private readonly FilePermissions _creationMask;
    private readonly VolumeTraits _volume;
    private ulong _destinationDevice;
    private DestinationWriteException? _abort;

    public CopyRun(IPosix posix, CopyOptions options, CopyReport report, int destinationRootFd, FilePermissions creationMask, VolumeTraits volume)
    {
        _posix = posix;
        _options = options;
        _report = report;
        _report.Volume = volume;
        _volume = volume;
        _destinationRootFd = destinationRootFd;
        _data = new FileDataCopier(posix, writeBehind: volume.FlushedBySyncFs, options.Stop);
        _metadata = new MetadataCopier(posix, options, volume, report.Losses);
        _reader = new DirectoryReader(posix);
        _creationMask = creationMask;
        _queue = options.Workers > 0 ? new BlockingCollection<CopyJob>(new ConcurrentQueue<CopyJob>(), QueueCapacity) : null;
    }

    public void Run(int sourceRootFd, int existingRootFd)
    {
        PosixException.Check(_posix.FStat(sourceRootFd, out var sourceRoot), "stat", "the home");
        PosixException.Check(_posix.FStat(_destinationRootFd, out var destinationRoot), "stat", "the destination");
        _destinationDevice = destinationRoot.st_dev;
        var root = new DirectoryNode(null, string.Empty, sourceRootFd, _destinationRootFd, existingRootFd, sourceRoot, isNew: existingRootFd < 0);

        var workers = StartWorkers();
        try
        {
            Walk(root);
        }
        finally
        {
            _queue?.CompleteAdding();
            foreach (var worker in workers)
            {
                worker.Join();
            }

            _queue?.Dispose();
        }

        ReportAbort();
    }

    public void RunOne(int sourceDirFd, string name)
    {
        PosixException.Check(_posix.FStat(sourceDirFd, out var sourceDirectory), "stat", "the source directory");
        PosixException.Check(_posix.FStat(_destinationRootFd, out var destination), "stat", "the destination");
        _destinationDevice = destination.st_dev;
        var directory = new DirectoryNode(null, string.Empty, sourceDirFd, _destinationRootFd, -1, sourceDirectory, isNew: false);
        try
        {
            Dispatch(directory, name, DirectoryReader.DT_UNKNOWN);
            ReleaseAndFinish(directory);
        }
        catch (DestinationWriteException failure)
        {
            Abort(failure);
        }

        ReportAbort();
    }

    /// <summary>
    /// Closes a complete file or directory of the copy. Where syncfs does not reach the data (FUSE,
    /// <see cref="VolumeTraits.FlushedBySyncFs"/>) it is fsync'ed first, here, by the thread that
    /// wrote it (a pool of fsync threads measured no faster on bindfs); elsewhere the caller's one
    /// syncfs does it all (per-file fsync measured 15 times slower than one syncfs for 4,769 entries on ext4).
    /// </summary>
    private void CloseComplete(int fd, string path)
    {
        try
        {
            int synced = _volume.FlushedBySyncFs ? 0 : _posix.FSync(fd);
            if (synced < 0 && !ErrnoMeaning.VolumeRefuses(PosixException.ErrnoOf(synced)))
            {
                throw new DestinationWriteException("fsync", path, PosixException.ErrnoOf(synced));
            }
        }
        finally
        {
            _posix.Close(fd);
        }
    }

    /// <summary>Whether a mode given to open(2) or mkfifo(2) survives the umask whole, so no chmod is needed.</summary>
    private bool CreationKeeps(FilePermissions permissions) => (permissions & _creationMask) == 0;

    private void ReportAbort()
    {
        if (Volatile.Read(ref _abort) is { } failure)
        {
            _report.FatalError = failure.Message;
            _report.OutOfSpace = failure.OutOfSpace;
        }
        else if (_options.Stop.IsCancellationRequested)
        {
            _report.FatalError = "stopped before it finished";
            _report.Stopped = true;
        }
    }

    private Thread[] StartWorkers()
    {
        var workers = new Thread[_queue is null ? 0 : _options.Workers];
        for (int i = 0; i < workers.Length; i++)
        {
            workers[i] = new Thread(WorkerLoop) { IsBackground = true, Name = $"copy-{i}" };
            workers[i].Start();
        }

        return workers;
    }

    private void WorkerLoop()
    {
        foreach (var job in _queue!.GetConsumingEnumerable())
        {
            Process(job);
        }
    }

    private bool Aborted => Volatile.Read(ref _abort) is not null || _options.Stop.IsCancellationRequested;

    private void Abort(DestinationWriteException failure)
    {
        Interlocked.CompareExchange(ref _abort, failure, null);
    }

    private void CloseIfOpen(int fd)
    {
        if (fd >= 0)
        {
            _posix.Close(fd);
        }
    }

    private static bool IsType(in Stat stat, FilePermissions type) => (stat.st_mode & FilePermissions.S_IFMT) == type;
}

/// <summary>One non-directory entry to copy: the directory it is in, its name, and the type readdir gave.</summary>
internal readonly record struct CopyJob(DirectoryNode Directory, string Name, byte Type);
