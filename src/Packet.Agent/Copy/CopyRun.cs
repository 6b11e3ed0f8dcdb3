using System.Collections.Concurrent;
using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Copy;

/// <summary>
/// One copy of a tree (TreeCopier's work): the scheduler. One walker thread lists directories and
/// creates them (CopyRun.Walk.cs); workers copy every other entry in parallel (<see cref="EntryCopier"/>);
/// directories finish bottom-up (<see cref="DirectoryFinisher"/>). What they share is one
/// <see cref="CopyContext"/>: a destination that cannot take more, or a stop request, ends the whole run.
/// </summary>
internal sealed partial class CopyRun
{
    private const OpenFlags DirectoryFlags = OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC;
    private const int QueueCapacity = 4096;

    private readonly CopyContext _context;
    private readonly DirectoryFinisher _finisher;
    private readonly EntryCopier _entries;
    private readonly DirectoryReader _reader;
    private readonly BlockingCollection<CopyJob>? _queue;

    public CopyRun(IPosix posix, CopyOptions options, CopyReport report, int destinationRootFd, FilePermissions creationMask, VolumeTraits volume)
    {
        report.Volume = volume;
        PosixException.Check(posix.FStat(destinationRootFd, out var destination), "stat", "the destination");
        _context = new CopyContext(posix, options, report, volume, creationMask, destinationRootFd, destination.st_dev);
        var metadata = new MetadataCopier(posix, options, volume, report.Losses);
        _finisher = new DirectoryFinisher(_context, metadata);
        _entries = new EntryCopier(_context, new FileDataCopier(posix, writeBehind: volume.FlushedBySyncFs, options.Stop), metadata, _finisher);
        _reader = new DirectoryReader(posix);
        _queue = options.Workers > 0 ? new BlockingCollection<CopyJob>(new ConcurrentQueue<CopyJob>(), QueueCapacity) : null;
    }

    public void Run(int sourceRootFd, int existingRootFd)
    {
        PosixException.Check(_context.Posix.FStat(sourceRootFd, out var sourceRoot), "stat", "the home");
        var root = new DirectoryNode(null, string.Empty, sourceRootFd, _context.DestinationRootFd, existingRootFd, sourceRoot, isNew: existingRootFd < 0);

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

        _context.ReportAbort();
    }

    public void RunOne(int sourceDirFd, string name)
    {
        PosixException.Check(_context.Posix.FStat(sourceDirFd, out var sourceDirectory), "stat", "the source directory");
        var directory = new DirectoryNode(null, string.Empty, sourceDirFd, _context.DestinationRootFd, -1, sourceDirectory, isNew: false);
        try
        {
            Dispatch(directory, name, DirectoryReader.DT_UNKNOWN);
            _finisher.ReleaseAndFinish(directory);
        }
        catch (DestinationWriteException failure)
        {
            _context.Abort(failure);
        }

        _context.ReportAbort();
    }

    private Thread[] StartWorkers()
    {
        var workers = new Thread[_queue is null ? 0 : _context.Options.Workers];
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
}

/// <summary>One non-directory entry to copy: the directory it is in, its name, and the type readdir gave.</summary>
internal readonly record struct CopyJob(DirectoryNode Directory, string Name, byte Type);
