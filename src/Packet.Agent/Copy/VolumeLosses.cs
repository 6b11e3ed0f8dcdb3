namespace Packet.Agent.Copy;

/// <summary>A kind of thing a volume may be unable to hold. The copy goes on without it, as cp -a does.</summary>
public enum LossKind
{
    Owners,
    Modes,
    Times,
    ExtendedAttributes,
    Symlinks,
    Fifos,
    HardLinks,
    Names,
}

/// <summary>One kind of loss: how many entries, the first one met, and the system's reason.</summary>
public sealed record LossSummary(LossKind Kind, long Count, string ExamplePath, string Reason)
{
    /// <summary>"owners of 170 entries", "3 symlinks left out": what was lost, in an operator's words.</summary>
    public string What => Kind switch
    {
        LossKind.Owners => $"owners of {Units.Entries(Count)}",
        LossKind.Modes => $"modes of {Units.Entries(Count)}",
        LossKind.Times => $"times of {Units.Entries(Count)}",
        LossKind.ExtendedAttributes => $"extended attributes of {Units.Entries(Count)}",
        LossKind.Symlinks => $"{Units.Count(Count)} symlink{Plural} left out",
        LossKind.Fifos => $"{Units.Count(Count)} FIFO{Plural} left out",
        LossKind.HardLinks => $"{Units.Count(Count)} hard link{Plural} copied as separate files",
        _ => $"{Units.Count(Count)} name{Plural} the volume cannot hold, left out",
    };

    /// <summary>The key the marker and the boot report use.</summary>
    public string Key => Kind switch
    {
        LossKind.ExtendedAttributes => "xattrs",
        LossKind.HardLinks => "hard_links",
        _ => Kind.ToString().ToLowerInvariant(),
    };

    private string Plural => Count == 1 ? string.Empty : "s";
}

/// <summary>
/// What the destination volume could not hold, counted by kind while the copy runs (from any
/// thread): an operator reads one line per kind, with one example, instead of one line per entry.
/// </summary>
public sealed class VolumeLosses
{
    private static readonly LossKind[] Kinds = Enum.GetValues<LossKind>();
    private readonly long[] _counts = new long[Kinds.Length];
    private readonly (string Path, string Reason)?[] _examples = new (string, string)?[Kinds.Length];
    private readonly Lock _examplesGate = new();

    public void Add(LossKind kind, string path, string reason)
    {
        if (Interlocked.Increment(ref _counts[(int)kind]) == 1)
        {
            lock (_examplesGate)
            {
                _examples[(int)kind] ??= (path, reason);
            }
        }
    }

    public long this[LossKind kind] => Interlocked.Read(ref _counts[(int)kind]);

    public long Total => _counts.Sum();

    /// <summary>Each kind with at least one loss, in the enum's order.</summary>
    public IReadOnlyList<LossSummary> Summaries()
    {
        var summaries = new List<LossSummary>();
        lock (_examplesGate)
        {
            foreach (var kind in Kinds)
            {
                if (this[kind] > 0 && _examples[(int)kind] is { } example)
                {
                    summaries.Add(new LossSummary(kind, this[kind], example.Path, example.Reason));
                }
            }
        }

        return summaries;
    }
}
