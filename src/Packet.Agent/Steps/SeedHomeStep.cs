using Microsoft.Extensions.Logging;
using Mono.Unix.Native;
using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Copy;
using Packet.Agent.Posix;
using Packet.Agent.Workspace;

namespace Packet.Agent.Steps;

/// <summary>
/// Step 2: on first boot (no marker), copy the contents of the home into <c>/workspace/home</c>.
/// Takes the workspace lock first, so two agents on one volume never copy at once; the second
/// waits, then finds the marker. Unreadable entries are left out and named; the boot goes on.
/// A copy that cannot complete (volume full, read-only) is a warning: the home stays unmarked.
/// </summary>
public sealed partial class SeedHomeStep(IPosix posix, ILogger logger, CopyOptions copyOptions, TimeSpan progressInterval) : IBootStep
{
    private static readonly TimeSpan LockReportInterval = TimeSpan.FromSeconds(10);

    public string Name => "seed";

    public int Number => 2;

    public FailurePolicy Policy => FailurePolicy.WarnAndContinue;

    public StepResult Run(BootContext context)
    {
        if (!context.PersistenceAvailable)
        {
            return StepResult.Skipped("no workspace");
        }

        var options = context.Options;
        try
        {
            using var workspace = DirectoryHandle.Open(posix, options.Workspace);
            bool marked = IsMarked(workspace);
            DirectoryHandle source;
            try
            {
                source = DirectoryHandle.Open(posix, options.Home);
            }
            catch (PosixException e)
            {
                context.HomeSeeded = marked;
                return marked
                    ? StepResult.Skipped($"already seeded (marker present); image changes not checked: {e.Message}")
                    : StepResult.Problem($"cannot read the home to seed from: {e.Message}; the home is not seeded");
            }

            using (source)
            {
                if (marked)
                {
                    context.HomeSeeded = true;
                    return options.Upgrade && !IsPersistedHome(source, workspace)
                        ? BringImageChanges(context, workspace, source)
                        : StepResult.Skipped("already seeded (marker present)");
                }

                if (IsPersistedHome(source, workspace))
                {
                    // The live home already is the persisted one (HOME=/workspace/home): nothing to copy.
                    context.SeedReport = new CopyReport();
                    return StepResult.Ok($"{options.Home} is the persisted home itself; nothing to copy");
                }

                var seeder = new HomeSeeder(posix, copyOptions with { Stop = context.Stop.Token }, progressInterval);
                if (options.DryRun)
                {
                    return Plan(context, seeder.Survey(workspace, source), workspace);
                }

                using var state = workspace.CreateDirectory(WorkspaceLayout.State, FilePermissions.S_IRWXU | FilePermissions.S_IRGRP | FilePermissions.S_IXGRP | FilePermissions.S_IROTH | FilePermissions.S_IXOTH);
                context.Lock = WorkspaceLock.Acquire(posix, state, options.LockTimeout, LockReportInterval, (holder, waited) => Log.WaitingForLock(logger, holder, Units.Duration(waited)), context.Stop.Token);
                if (context.Lock is null)
                {
                    return StepResult.Problem($"another agent has held {state.PathOf(WorkspaceLayout.Lock)} for over {Units.Duration(options.LockTimeout)} (see --lock-timeout); the seed is left to it");
                }

                if (IsMarked(workspace))
                {
                    context.HomeSeeded = true;
                    return StepResult.Skipped("seeded by another agent while this one waited");
                }

                var outcome = seeder.Seed(workspace, source, new Observer(logger, options.Home, workspace.PathOf(WorkspaceLayout.Home)));
                if (outcome.Report is { } report)
                {
                    if (report.ProblemCount > copyOptions.ProblemsToName)
                    {
                        Log.MoreProblems(logger, report.ProblemCount - copyOptions.ProblemsToName);
                    }

                    foreach (var loss in report.Losses.Summaries())
                    {
                        Log.NotPreserved(logger, loss.What, NativeName.Display(loss.ExamplePath), loss.Reason);
                    }
                }

                if (!outcome.Complete)
                {
                    return StepResult.Problem(outcome.Problem!);
                }

                context.SeedReport = outcome.Report;
                RecordBaseline(state, source, options);
                return Result(outcome.Report!);
            }
        }
        catch (IOException e)
        {
            return StepResult.Problem($"{e.Message}; the home is not seeded");
        }
        catch (OperationCanceledException)
        {
            return StepResult.Problem($"stopped by {context.Stop.SignalName} before the copy began; nothing was copied");
        }
    }

    /// <summary>What identifies the image's home: the version the image build set, else a cheap fingerprint.</summary>
    private string ImageIdentity(BootOptions options, DirectoryHandle source) =>
        options.ImageVersion is { Length: > 0 } version ? "version:" + version : ImageManifest.Fingerprint(posix, source.Fd);

    private void RecordBaseline(DirectoryHandle state, DirectoryHandle source, BootOptions options)
    {
        try
        {
            Upgrader().RecordBaseline(state, source, ImageIdentity(options, source));
        }
        catch (IOException e)
        {
            Log.ManifestNotRecorded(logger, e.Message);
        }
    }

    /// <summary>
    /// A seeded home on a later boot: nothing to do unless the image changed (a version string, or a
    /// fingerprint of the home's first two levels: no walk of the whole home). Then its changes are
    /// brought in, under the workspace lock, without overwriting anything the user changed.
    /// </summary>
    private StepResult BringImageChanges(BootContext context, DirectoryHandle workspace, DirectoryHandle source)
    {
        var options = context.Options;
        string identity = ImageIdentity(options, source);
        using var existingState = workspace.TryOpenDirectory(WorkspaceLayout.State);
        string? recorded = existingState is null ? null : ImageUpgrade.RecordedIdentity(existingState, posix);
        if (recorded == identity)
        {
            return StepResult.Skipped("already seeded (marker present); the image's home is unchanged");
        }

        if (options.DryRun)
        {
            if (recorded is null)
            {
                return StepResult.Ok("already seeded; would record the image's home as the baseline for upgrades");
            }

            using var plannedHome = workspace.OpenDirectory(WorkspaceLayout.Home);
            var plan = Upgrader().Upgrade(existingState!, source, plannedHome, identity, dryRun: true);
            return StepResult.Ok($"the image changed ({recorded} -> {identity}): would bring it in: {plan.Summary}");
        }

        using var state = workspace.CreateDirectory(WorkspaceLayout.State, FilePermissions.S_IRWXU | FilePermissions.S_IRGRP | FilePermissions.S_IXGRP | FilePermissions.S_IROTH | FilePermissions.S_IXOTH);
        context.Lock = WorkspaceLock.Acquire(posix, state, options.LockTimeout, LockReportInterval, (holder, waited) => Log.WaitingForLock(logger, holder, Units.Duration(waited)), context.Stop.Token);
        if (context.Lock is null)
        {
            return StepResult.Problem($"another agent has held {state.PathOf(WorkspaceLayout.Lock)} for over {Units.Duration(options.LockTimeout)}; image changes not brought in this boot");
        }

        recorded = ImageUpgrade.RecordedIdentity(state, posix);
        if (recorded == identity)
        {
            return StepResult.Skipped("already seeded; another agent brought in the image's changes meanwhile");
        }

        if (recorded is null)
        {
            // A home seeded by the bash script, or by an agent before manifests: today's image is the baseline.
            Upgrader().RecordBaseline(state, source, identity);
            return StepResult.Ok("already seeded; recorded the image's home as the baseline for later upgrades");
        }

        using var home = workspace.OpenDirectory(WorkspaceLayout.Home);
        var report = Upgrader().Upgrade(state, source, home, identity, dryRun: false);
        string summary = $"the image changed ({recorded} -> {identity}): {report.Summary}";
        return report.Failed > 0 ? StepResult.Problem(summary) : StepResult.Ok(summary);
    }

    private ImageUpgrade Upgrader() => new(posix, copyOptions, action => Log.Upgrade(logger, NativeName.Display(action)));

    private static StepResult Plan(BootContext context, SeedPlan plan, DirectoryHandle workspace)
    {
        string destination = workspace.PathOf(WorkspaceLayout.Home);
        if (HomeSeeder.Obstacle(plan, workspace.Path) is { } obstacle)
        {
            return StepResult.Problem($"would not seed: {obstacle}");
        }

        context.SeedPlanned = true;
        string what = plan.Merging ? $"copy what {destination} lacks:" : "copy";
        string resuming = plan.Resuming ? ", resuming an interrupted seed" : string.Empty;
        return StepResult.Ok($"would {what} {Units.Entries(plan.ToCopy.Entries)} ({Units.Size(plan.ToCopy.AllocatedBytes, plan.ToCopy.Bytes)}) from {context.Options.Home} into {destination}{resuming}; {Units.Bytes(plan.FreeBytes)} free");
    }

    /// <summary>
    /// A complete seed is a warning when the home is less than its source: entries left out, or
    /// what the volume could not hold. The marker is written all the same (the copy is as complete
    /// as this volume allows; copying again would not change that), and status shows the losses.
    /// </summary>
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

    private sealed class Observer(ILogger logger, string source, string destination) : ISeedObserver
    {
        private readonly DateTime _started = DateTime.UtcNow;

        public void Planned(SeedPlan plan)
        {
            if (plan.Resuming)
            {
                Log.Resuming(logger);
            }

            if (plan.Merging)
            {
                Log.Merging(logger, destination);
            }

            Log.Planned(logger, destination, source, Units.Entries(plan.ToCopy.Entries), Units.Size(plan.ToCopy.AllocatedBytes, plan.ToCopy.Bytes), Units.Bytes(plan.FreeBytes));
        }

        public void Progress(CopyReport report, TreeSize total)
        {
            var elapsed = DateTime.UtcNow - _started;
            // On-disk bytes: a sparse file's holes cost neither time nor space.
            long bytes = Interlocked.Read(ref report.AllocatedBytes);
            double rate = bytes / Math.Max(elapsed.TotalSeconds, 1e-3);
            double fraction = total.AllocatedBytes > 0 ? (double)bytes / total.AllocatedBytes : total.Entries > 0 ? (double)report.Entries / total.Entries : 1;
            fraction = Math.Clamp(fraction, 0, 1);
            string eta = rate > 0 && total.AllocatedBytes > bytes ? Units.Duration(TimeSpan.FromSeconds((total.AllocatedBytes - bytes) / rate)) : "unknown";
            Log.Progress(logger, Units.Count(report.Entries), Units.Count(total.Entries), Units.Bytes(bytes), Units.Bytes(total.AllocatedBytes), Math.Round(fraction * 100, 1), Units.Bytes(rate), eta);
        }

        public void Problem(CopyProblem problem)
        {
            string path = problem.Path.Length == 0 ? "." : NativeName.Display(problem.Path);
            switch (problem.Kind)
            {
                case ProblemKind.Unreadable:
                case ProblemKind.NotWritten:
                case ProblemKind.ChangedDuringCopy:
                    Log.LeftOut(logger, path, problem.Detail);
                    break;
                default:
                    Log.Incomplete(logger, path, problem.Detail);
                    break;
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "waiting for the workspace lock, held by {Holder} ({Waited} so far)")]
        public static partial void WaitingForLock(ILogger logger, string holder, string waited);

        [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "resuming a seed an earlier boot did not finish; complete files are kept")]
        public static partial void Resuming(ILogger logger);

        [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "{Destination} already exists without a marker: copying only what it lacks; nothing in it is replaced")]
        public static partial void Merging(ILogger logger, string destination);

        [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "seeding {Destination} from {Source}: {Entries}, {Bytes} to copy, {Free} free on the volume")]
        public static partial void Planned(ILogger logger, string destination, string source, string entries, string bytes, string free);

        [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "copying: {Entries} of {TotalEntries} entries, {Bytes} of {TotalBytes} ({Percent}%), {Rate}/s, about {Eta} left")]
        public static partial void Progress(ILogger logger, string entries, string totalEntries, string bytes, string totalBytes, double percent, string rate, string eta);

        [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "left out {Path}: {Detail}")]
        public static partial void LeftOut(ILogger logger, string path, string detail);

        [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "copied {Path}, but: {Detail}")]
        public static partial void Incomplete(ILogger logger, string path, string detail);

        [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "{Action}")]
        public static partial void Upgrade(ILogger logger, string action);

        [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "could not record the manifest of the image's home ({Reason}); image changes will be brought in once it is recorded")]
        public static partial void ManifestNotRecorded(ILogger logger, string reason);

        [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "not preserved on this volume: {What}, e.g. {Example} ({Reason})")]
        public static partial void NotPreserved(ILogger logger, string what, string example, string reason);

        [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "... and {Count} more problems, counted in the summary but not named")]
        public static partial void MoreProblems(ILogger logger, int count);
    }
}
