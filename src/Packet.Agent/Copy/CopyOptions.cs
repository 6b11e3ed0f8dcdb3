namespace Packet.Agent.Copy;

/// <summary>How a tree copy runs.</summary>
public sealed record CopyOptions
{
    /// <summary>Threads copying file data and metadata beside the directory walker; 0 copies on the walker alone.</summary>
    public int Workers { get; init; } = DefaultWorkers();

    /// <summary>chown each entry to its source owner (the agent runs as root); otherwise files belong to the agent's user.</summary>
    public bool PreserveOwnership { get; init; }

    /// <summary>How many problems are named one by one before only counting the rest.</summary>
    public int ProblemsToName { get; init; } = 20;

    /// <summary>Called with each problem among the first <see cref="ProblemsToName"/>, from any thread.</summary>
    public Action<CopyProblem>? OnProblem { get; init; }

    /// <summary>Ends the copy early (a stop signal): what was copied stays, as after a kill, for the next boot to resume.</summary>
    public CancellationToken Stop { get; init; }

    /// <summary>A directory never copied from the source (device, inode): the workspace, if the home contains it.</summary>
    public (ulong Device, ulong Inode)? ExcludedDirectory { get; init; }

    private static int DefaultWorkers() => Math.Clamp(Environment.ProcessorCount, 2, 8);
}
