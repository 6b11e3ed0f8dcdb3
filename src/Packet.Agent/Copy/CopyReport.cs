using System.Collections.Concurrent;

namespace Packet.Agent.Copy;

/// <summary>What went wrong with one entry.</summary>
public enum ProblemKind
{
    /// <summary>The entry could not be read; it was left out.</summary>
    Unreadable,

    /// <summary>The entry vanished or changed type while it was being copied.</summary>
    ChangedDuringCopy,

    /// <summary>The workspace refused this one entry for a reason of its own (not a kind of thing it cannot hold); it was left out.</summary>
    NotWritten,
}

/// <summary>One problem: what, where (relative to the copied tree) and the system's reason.</summary>
public sealed record CopyProblem(ProblemKind Kind, string Path, string Detail);

/// <summary>
/// What a copy did, counted while it runs (workers update it concurrently) and read at the end for
/// the summary line and the marker. Counters are fields so Interlocked can update them.
/// </summary>
public sealed class CopyReport
{
    private readonly ConcurrentQueue<CopyProblem> _namedProblems = new();
    private readonly int _problemsToName;
    private int _problemCount;

#pragma warning disable CA1051 // Interlocked needs fields; these are the report's counters, nothing else.
    public long Files;
    public long Directories;
    public long Symlinks;
    public long Fifos;
    public long HardLinks;
    public long Bytes;
    public long AllocatedBytes;
    public long ResumedFiles;
    public long KeptExisting;
    public long SkippedUnreadable;
    public long SkippedSockets;
    public long SkippedDevices;
    public long ChangedDuringCopy;
    public long NotWritten;
    public long ExcludedDirectories;
#pragma warning restore CA1051

    public CopyReport(int problemsToName = 20)
    {
        _problemsToName = problemsToName;
    }

    /// <summary>Set when the copy stopped early; the destination is then incomplete.</summary>
    public string? FatalError { get; internal set; }

    /// <summary>True when a stop request ended the copy (<see cref="FatalError"/> says so too).</summary>
    public bool Stopped { get; internal set; }

    /// <summary>True when the fatal error was the destination running out of space or quota.</summary>
    public bool OutOfSpace { get; internal set; }

    /// <summary>The copy's own time: the flush that makes it durable is <see cref="FlushDuration"/>.</summary>
    public TimeSpan Duration { get; internal set; }

    /// <summary>How long making the copy durable took (syncfs), set by the seed.</summary>
    public TimeSpan FlushDuration { get; internal set; }

    /// <summary>What the destination volume holds, as the copy found it.</summary>
    public VolumeTraits Volume { get; internal set; } = VolumeTraits.Full;

    /// <summary>What the destination could not hold, by kind (owners, modes, symlinks, ...).</summary>
    public VolumeLosses Losses { get; } = new();

    public long Entries => Files + Directories + Symlinks + Fifos + HardLinks;

    public long Skipped => SkippedUnreadable + SkippedSockets + SkippedDevices + ChangedDuringCopy + NotWritten;

    /// <summary>The first problems, in the order they happened; <see cref="ProblemCount"/> counts them all.</summary>
    public IReadOnlyCollection<CopyProblem> NamedProblems => _namedProblems;

    public int ProblemCount => Volatile.Read(ref _problemCount);

    /// <summary>Records a problem; returns true when it is among the first ones, which are named in the log.</summary>
    internal bool AddProblem(CopyProblem problem)
    {
        int number = Interlocked.Increment(ref _problemCount);
        if (number > _problemsToName)
        {
            return false;
        }

        _namedProblems.Enqueue(problem);
        return true;
    }
}
