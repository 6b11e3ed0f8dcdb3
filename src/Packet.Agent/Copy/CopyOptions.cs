namespace Packet.Agent.Copy;

/// <summary>
/// How a tree copy runs, and what it does when something fails (as coreutils' struct cp_options
/// states its policy field by field). Not configurable, and the same for every copy:
/// <list type="bullet">
/// <item>An entry the agent cannot read (EACCES, vanished, changed type): left out, counted, named in the report; the copy goes on.</item>
/// <item>A name, kind or piece of metadata the destination volume cannot hold (<see cref="Posix.ErrnoMeaning"/>): a loss, recorded per kind; the copy goes on, as cp -a on that volume does.</item>
/// <item>A destination that cannot take more (full, quota, read-only, EIO): the whole copy stops; what was copied stays for a resumed copy.</item>
/// <item>What a killed copy left in the destination: a finished file (same size and modification time) is kept, anything else replaced.</item>
/// </list>
/// </summary>
public sealed record CopyOptions
{
    /// <summary>
    /// Threads copying file data and metadata beside the directory walker; 0 copies on the walker
    /// alone. One rule for every volume but the FAT-like ones (one thread, see VolumeTraits.IsFatLike):
    /// on FUSE, where each call is a round trip to the daemon, more did not help (bindfs over ext4,
    /// 4,769 entries, medians of 4: 9.8 s with 2 workers, 10.4 s with 4, 10.5 s with 8).
    /// </summary>
    public int Workers { get; init; } = DefaultWorkers();

    /// <summary>
    /// chown each entry to its source owner (the agent runs as root); otherwise files belong to the
    /// agent's user. A chown the volume refuses (NFS root_squash, FAT) is an ownership loss, recorded; the copy goes on.
    /// </summary>
    public bool PreserveOwnership { get; init; }

    /// <summary>How many problems are named one by one before only counting the rest.</summary>
    public int ProblemsToName { get; init; } = 20;

    /// <summary>Called with each problem among the first <see cref="ProblemsToName"/>, from any thread.</summary>
    public Action<CopyProblem>? OnProblem { get; init; }

    /// <summary>Ends the copy early (a stop signal): what was copied stays, as after a kill, for the next boot to resume; the report says it stopped.</summary>
    public CancellationToken Stop { get; init; }

    /// <summary>The clock the copy's durations are measured by (the boot's one clock).</summary>
    public TimeProvider Clock { get; init; } = TimeProvider.System;

    /// <summary>A directory never copied from the source (device, inode): the workspace, if the home contains it.</summary>
    public (ulong Device, ulong Inode)? ExcludedDirectory { get; init; }

    private static int DefaultWorkers() => Math.Clamp(Environment.ProcessorCount, 2, 8);
}
