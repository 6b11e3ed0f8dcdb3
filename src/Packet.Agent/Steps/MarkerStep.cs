using System.Text.Json;
using Packet.Agent.Boot;
using Packet.Agent.Copy;
using Packet.Agent.Home;
using Packet.Agent.Posix;
using Packet.Agent.Workspace;

namespace Packet.Agent.Steps;

/// <summary>
/// Step 3: <c>/workspace/home/.packet-init</c>, written only after a complete seed, last, and
/// atomically (temporary file, fsync, rename, fsync of the directory). Its JSON body says who
/// seeded the home and what the copy did; an empty marker (the bash script's) is just as valid.
/// </summary>
public sealed class MarkerStep(IPosix posix, TimeProvider clock) : IBootStep<HomeState, HomeState>
{
    public StepId Id => StepId.Marker;

    public FailurePolicy Policy => FailurePolicy.WarnAndContinue;

    public StepPlan<HomeState> Decide(HomeState input, BootSettings settings)
    {
        string marker = input.Workspace.PathOf(Path.Join(WorkspaceLayout.Home, WorkspaceLayout.Marker));
        return input.Status switch
        {
            HomeStatus.Seeded => StepPlan.Settled<HomeState>(StepResult.Skipped("already present"), input),
            HomeStatus.WillBeSeeded => StepPlan.Settled<HomeState>(StepResult.Ok($"would write {marker} after the seed"), input, [PlannedChange.WriteFile(marker, "after the seed")]),
            HomeStatus.Copied when input.Copied is { } report => new MarkerPlan(input, report, marker),
            _ => StepPlan.Settled<HomeState>(StepResult.Skipped("the home was not seeded, so it is not marked (the next boot tries again)"), input),
        };
    }

    public (StepResult Result, HomeState Value) Apply(StepPlan<HomeState> plan, BootSettings settings) =>
        plan is MarkerPlan marker ? Write(marker.Home, marker.Report, settings) : (plan.Preview, plan.Planned);

    private (StepResult, HomeState) Write(HomeState home, CopyReport report, BootSettings settings)
    {
        try
        {
            using var persisted = home.Workspace.OpenDirectory(WorkspaceLayout.Home);
            PosixException.Check(posix.FStat(persisted.Fd, out var owner), "stat", persisted.Path);
            byte[] body = JsonSerializer.SerializeToUtf8Bytes(Body(settings, report), HomeJson.Default.MarkerBody);
            persisted.ReplaceFile(WorkspaceLayout.Marker, body, owner.st_uid, owner.st_gid, FileModes.Readable);
            return (StepResult.Ok($"wrote {persisted.PathOf(WorkspaceLayout.Marker)}"), home with { Status = HomeStatus.Seeded });
        }
        catch (IOException e)
        {
            return (StepResult.Problem($"{e.Message}; the home is complete but unmarked, so the next boot checks it again"), home);
        }
    }

    private MarkerBody Body(BootSettings settings, CopyReport report)
    {
        var counts = Counts(report);
        return new(AgentInfo.Name, AgentInfo.Version, clock.GetUtcNow(), NativeName.Display(settings.Options.Home), counts.Copied, counts.Skipped, counts.DurationSeconds, counts.FlushSeconds, counts.NotPreserved);
    }

    /// <summary>The marker to write after a complete copy: the home, the copy's report, and where.</summary>
    private sealed class MarkerPlan(HomeState home, CopyReport report, string marker)
        : StepPlan<HomeState>(StepResult.Ok($"would write {marker}"), home with { Status = HomeStatus.Seeded }, [PlannedChange.WriteFile(marker)])
    {
        public HomeState Home => home;

        public CopyReport Report => report;
    }

    /// <summary>A copy's counts as the marker and the boot report record them.</summary>
    public static SeedCounts Counts(CopyReport report)
    {
        var losses = report.Losses.Summaries();
        return new(
            new MarkerCopied(report.Entries, report.Files, report.Directories, report.Symlinks, report.HardLinks, report.Fifos, report.Bytes, report.KeptExisting, report.AllocatedBytes),
            new MarkerSkipped(report.SkippedUnreadable, report.SkippedSockets, report.SkippedDevices, report.ChangedDuringCopy, report.NotWritten),
            Math.Round(report.Duration.TotalSeconds, 3),
            Math.Round(report.FlushDuration.TotalSeconds, 3),
            losses.Count == 0 ? null : losses.ToDictionary(l => l.Key, l => new MarkerLoss(l.Count, NativeName.Display(l.ExamplePath), l.Reason), StringComparer.Ordinal));
    }
}
