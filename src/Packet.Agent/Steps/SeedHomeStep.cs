using Microsoft.Extensions.Logging;
using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Copy;
using Packet.Agent.Home;
using Packet.Agent.Posix;
using Packet.Agent.Workspace;

namespace Packet.Agent.Steps;

/// <summary>
/// Step 2: on first boot (no marker), copy the contents of the home into <c>/workspace/home</c>;
/// on a later boot, bring a new image's home in (SeedHomeStep.Upgrade.cs). It decides by looking
/// (the marker, the image's identity, a scan of what is to copy), then takes the workspace lock to
/// act, so two agents on one volume never write at once; the second waits, then finds the work done.
/// Unreadable entries are left out and named; a copy that cannot complete (volume full, read-only)
/// is a warning, and the home stays unmarked.
/// </summary>
public sealed partial class SeedHomeStep(IPosix posix, ILogger logger, CopyOptions copyOptions, TimeSpan progressInterval, TimeProvider clock) : IBootStep<DirectoryHandle, HomeState>
{
    private static readonly TimeSpan LockReportInterval = TimeSpan.FromSeconds(10);

    public StepId Id => StepId.Seed;

    public FailurePolicy Policy => FailurePolicy.WarnAndContinue;

    public StepPlan<HomeState> Decide(DirectoryHandle input, BootSettings settings)
    {
        var options = settings.Options;
        try
        {
            bool marked = IsMarked(input);
            DirectoryHandle source;
            try
            {
                source = DirectoryHandle.Open(posix, options.Home);
            }
            catch (PosixException e)
            {
                return marked
                    ? Settled(StepResult.Skipped($"already seeded (marker present); image changes not checked: {e.Message}"), input, HomeStatus.Seeded)
                    : Settled(StepResult.Problem($"cannot read the home to seed from: {e.Message}; the home is not seeded"), input, HomeStatus.NotSeeded);
            }

            using (source)
            {
                bool itself = IsPersistedHome(source, input);
                if (marked)
                {
                    return options.Upgrade && !itself
                        ? DecideImageChanges(input, source, settings)
                        : Settled(StepResult.Skipped("already seeded (marker present)"), input, HomeStatus.Seeded);
                }

                if (itself)
                {
                    // The live home already is the persisted one (HOME=/workspace/home): nothing to copy, only to mark.
                    return StepPlan.Settled<HomeState>(StepResult.Ok($"{options.Home} is the persisted home itself; nothing to copy"), new HomeState(input, HomeStatus.Copied, new CopyReport()));
                }

                return DecideFirstSeed(input, source, settings);
            }
        }
        catch (IOException e)
        {
            return Settled(StepResult.Problem($"{e.Message}; the home is not seeded"), input, HomeStatus.NotSeeded);
        }
        catch (OperationCanceledException)
        {
            return Settled(StepResult.Problem($"stopped by {settings.Stop.SignalName} before the copy began; nothing was copied"), input, HomeStatus.NotSeeded);
        }
    }

    /// <summary>A seed's counts and problems, in one line; a warning when the home is less than its source.</summary>
    /// <remarks>
    /// Less than its source: entries left out, or what the volume could not hold. The marker is written
    /// all the same (the copy is as complete as this volume allows; copying again would not change
    /// that), and status shows the losses.
    /// </remarks>
    public static StepResult Result(CopyReport report)
    {
        string summary = Summary(report);
        bool incomplete = report.SkippedUnreadable > 0 || report.NotWritten > 0 || report.Losses.Total > 0;
        return incomplete ? StepResult.Problem(summary) : StepResult.Ok(summary);
    }

    public static string Summary(CopyReport report)
    {
        double seconds = Math.Max(report.Duration.TotalSeconds, 1e-3);
        string summary = $"copied {Units.Entries(report.Entries)}, {Units.Size(report.AllocatedBytes, report.Bytes)}, in {Units.Duration(report.Duration)} ({Units.Bytes(report.AllocatedBytes / seconds)}/s) "
            + $"and flushed it to disk in {Units.Duration(report.FlushDuration)}; "
            + $"skipped {Units.Count(report.SkippedUnreadable)} unreadable, {Units.Count(report.SkippedSockets)} sockets, {Units.Count(report.SkippedDevices)} devices, "
            + $"{Units.Count(report.ChangedDuringCopy)} changed while copying";
        if (report.NotWritten > 0)
        {
            summary += $", {Units.Count(report.NotWritten)} refused by the volume";
        }

        if (report.KeptExisting > 0)
        {
            summary += $"; kept {Units.Entries(report.KeptExisting)} already in the home";
        }

        if (report.ResumedFiles > 0)
        {
            summary += $"; {Units.Count(report.ResumedFiles)} files were already complete from an interrupted boot";
        }

        var losses = report.Losses.Summaries();
        if (losses.Count > 0)
        {
            summary += "; not preserved on this volume: " + string.Join(", ", losses.Select(l => l.What));
        }

        return summary;
    }

    private static StepPlan<HomeState> Settled(StepResult result, DirectoryHandle workspace, HomeStatus status) =>
        StepPlan.Settled<HomeState>(result, new HomeState(workspace, status));

    /// <summary>A first seed: what the scan found, and the copy under the lock to carry it out.</summary>
    private StepPlan<HomeState> DecideFirstSeed(DirectoryHandle workspace, DirectoryHandle source, BootSettings settings)
    {
        var options = settings.Options;
        var seeder = new HomeSeeder(posix, copyOptions with { Stop = settings.Stop.Token, Clock = clock }, progressInterval);
        var plan = seeder.Survey(workspace, source);
        if (HomeSeeder.Obstacle(plan, workspace.Path) is { } obstacle)
        {
            return Settled(StepResult.Problem($"{obstacle}; nothing was copied and the home is not marked"), workspace, HomeStatus.NotSeeded);
        }

        string destination = workspace.PathOf(WorkspaceLayout.Home);
        string what = plan.Merging ? $"copy what {destination} lacks:" : "copy";
        string resuming = plan.Resuming ? ", resuming an interrupted seed" : string.Empty;
        var preview = StepResult.Ok($"would {what} {Units.Entries(plan.ToCopy.Entries)} ({Units.Size(plan.ToCopy.AllocatedBytes, plan.ToCopy.Bytes)}) from {options.Home} into {destination}{resuming}; {Units.Bytes(plan.FreeBytes)} free");
        return new FirstSeedPlan(preview, workspace, seeder, plan, SeedChanges(workspace, options.Home, plan, posix.EffectiveUserId, RecordsOwner(settings)));
    }

    public (StepResult Result, HomeState Value) Apply(StepPlan<HomeState> plan, BootSettings settings) => plan switch
    {
        FirstSeedPlan first => Seed(first.Workspace, first.Seeder, first.Survey, settings),
        BaselinePlan baseline => RecordBaseline(baseline, settings),
        ImageChangesPlan changes => BringInImageChanges(changes, settings),
        _ => (plan.Preview, plan.Planned),
    };

    /// <summary>Carries a first seed out: the lock (held past this step, through the marker and the profile), the copy, the baseline for upgrades.</summary>
    private (StepResult, HomeState) Seed(DirectoryHandle workspace, HomeSeeder seeder, SeedPlan plan, BootSettings settings)
    {
        var options = settings.Options;
        var notSeeded = new HomeState(workspace, HomeStatus.NotSeeded);
        WorkspaceLock? held = null;
        try
        {
            using var shared = StateFolder.CreateShared(posix, workspace);
            bool waited = false;
            held = Lock(shared, settings, () => waited = true);
            if (held is null)
            {
                return (StepResult.Problem($"another agent has held {shared.PathOf(WorkspaceLayout.Lock)} for over {Units.Duration(options.LockTimeout)} (see --lock-timeout); the seed is left to it"), notSeeded);
            }

            using var records = settings.Account.CreateRecords(posix, workspace);

            if (IsMarked(workspace))
            {
                return (StepResult.Skipped("seeded by another agent while this one waited"), new HomeState(workspace, HomeStatus.Seeded));
            }

            using var source = DirectoryHandle.Open(posix, options.Home);
            using var baseline = new BaselineInBackground(
                stop =>
                {
                    // A descriptor of its own: a directory's read position is shared by all who read
                    // through one descriptor, and the copy lists the same home at the same time.
                    using var image = source.OpenDirectory(".");
                    return Upgrader().PrepareBaseline(records, image, ImageIdentity(options, image), stop);
                },
                settings.Stop.Token);

            // What another agent left while this one waited makes the scan stale: the seeder scans again.
            var outcome = seeder.Seed(workspace, source, waited ? null : plan, new Observer(logger, options.Home, workspace.PathOf(WorkspaceLayout.Home), clock));
            LogProblems(outcome.Report);
            if (!outcome.Complete)
            {
                return (StepResult.Problem(outcome.Problem!), notSeeded);
            }

            CommitBaseline(baseline);
            var seeded = new HomeState(workspace, HomeStatus.Copied, outcome.Report, held);
            held = null; // handed on: the sequence releases it after the profile step
            var result = Result(outcome.Report!);
            // Surveyed again, the copy still makes only the plan's kinds of change at the plan's places.
            return (waited ? result with { Replanned = new Replan("another agent held the workspace lock meanwhile, so what to copy was surveyed again under it", SeedChanges(workspace, options.Home, plan, posix.EffectiveUserId, RecordsOwner(settings))) } : result, seeded);
        }
        catch (IOException e)
        {
            return (StepResult.Problem($"{e.Message}; the home is not seeded"), notSeeded);
        }
        catch (OperationCanceledException)
        {
            return (StepResult.Problem($"stopped by {settings.Stop.SignalName} before the copy began; nothing was copied"), notSeeded);
        }
        finally
        {
            held?.Dispose();
        }
    }

    private WorkspaceLock? Lock(DirectoryHandle state, BootSettings settings, Action onWait) =>
        WorkspaceLock.Acquire(
            posix,
            state,
            clock,
            settings.Options.LockTimeout,
            LockReportInterval,
            (holder, waited) =>
            {
                onWait();
                Log.WaitingForLock(logger, holder, Units.Duration(waited));
            },
            settings.Stop.Token);

    private void LogProblems(CopyReport? report)
    {
        if (report is null)
        {
            return;
        }

        if (report.ProblemCount > copyOptions.ProblemsToName)
        {
            Log.MoreProblems(logger, report.ProblemCount - copyOptions.ProblemsToName);
        }

        foreach (var loss in report.Losses.Summaries())
        {
            Log.NotPreserved(logger, loss.What, NativeName.Display(loss.ExamplePath), loss.Reason);
        }
    }

    /// <summary>What identifies the image's home: the version the image build set, else a cheap fingerprint.</summary>
    private string ImageIdentity(BootOptions options, DirectoryHandle source) =>
        options.ImageVersion is { Length: > 0 } version ? "version:" + version : ImageManifest.Fingerprint(posix, source.Fd);

    private void CommitBaseline(BaselineInBackground baseline)
    {
        try
        {
            baseline.Wait().Commit();
        }
        catch (IOException e)
        {
            Log.ManifestNotRecorded(logger, e.Message);
        }
        catch (OperationCanceledException)
        {
            Log.ManifestNotRecorded(logger, "stopped before it was written");
        }
    }

    private ImageUpgrade Upgrader() => new(posix, copyOptions with { Clock = clock }, action => Log.Upgrade(logger, NativeName.Display(action)));

    private static bool IsMarked(DirectoryHandle workspace)
    {
        using var home = workspace.TryOpenDirectory(WorkspaceLayout.Home);
        return home is not null && home.Exists(WorkspaceLayout.Marker);
    }

    private bool IsPersistedHome(DirectoryHandle source, DirectoryHandle workspace)
    {
        using var home = workspace.TryOpenDirectory(WorkspaceLayout.Home);
        return home is not null
            && posix.FStat(source.Fd, out var a) >= 0 && posix.FStat(home.Fd, out var b) >= 0
            && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
    }

    /// <summary>
    /// The baseline manifest, prepared on its own thread while the home is copied and flushed: it
    /// reads the image's home (page cache, CPU) while the flush waits on the disk. Disposing it
    /// stops that thread if it is still at work, waits for it, and throws an uncommitted manifest away.
    /// </summary>
    private sealed class BaselineInBackground : IDisposable
    {
        private readonly CancellationTokenSource _abandon;
        private readonly Task<PendingBaseline> _preparing;

        public BaselineInBackground(Func<CancellationToken, PendingBaseline> prepare, CancellationToken stop)
        {
            _abandon = CancellationTokenSource.CreateLinkedTokenSource(stop);
            var token = _abandon.Token;
            _preparing = Task.Factory.StartNew(() => prepare(token), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }

        public PendingBaseline Wait() => _preparing.GetAwaiter().GetResult();

        public void Dispose()
        {
            _abandon.Cancel();
            try
            {
                Wait().Dispose();
            }
            catch (Exception e) when (e is IOException or OperationCanceledException)
            {
                // Nothing was committed: a complete seed logged why (CommitBaseline); an incomplete one records no baseline.
            }
            finally
            {
                _abandon.Dispose();
            }
        }
    }
}
