using System.Text.Json;
using Mono.Unix.Native;
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
    private const FilePermissions MarkerMode = FilePermissions.S_IRUSR | FilePermissions.S_IWUSR | FilePermissions.S_IRGRP | FilePermissions.S_IROTH;

    public string Name => "marker";

    public int Number => 3;

    public FailurePolicy Policy => FailurePolicy.WarnAndContinue;

    public StepPlan<HomeState> Decide(HomeState input, BootSettings settings)
    {
        string marker = input.Workspace.PathOf(Path.Join(WorkspaceLayout.Home, WorkspaceLayout.Marker));
        return input.Status switch
        {
            HomeStatus.Seeded => StepPlan.Settled<HomeState>(StepResult.Skipped("already present"), input),
            HomeStatus.WillBeSeeded => StepPlan.Settled<HomeState>(StepResult.Ok($"would write {marker} after the seed"), input),
            HomeStatus.Copied when input.Copied is { } report => StepPlan.ToApply<HomeState>(
                StepResult.Ok($"would write {marker}"),
                input with { Status = HomeStatus.Seeded },
                () => Write(input, report, settings)),
            _ => StepPlan.Settled<HomeState>(StepResult.Skipped("the home was not seeded, so it is not marked (the next boot tries again)"), input),
        };
    }

    private (StepResult, HomeState) Write(HomeState home, CopyReport report, BootSettings settings)
    {
        try
        {
            using var persisted = home.Workspace.OpenDirectory(WorkspaceLayout.Home);
            PosixException.Check(posix.FStat(persisted.Fd, out var owner), "stat", persisted.Path);
            byte[] body = JsonSerializer.SerializeToUtf8Bytes(Body(settings, report), HomeJson.Default.MarkerBody);
            persisted.ReplaceFile(WorkspaceLayout.Marker, body, owner.st_uid, owner.st_gid, MarkerMode);
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
