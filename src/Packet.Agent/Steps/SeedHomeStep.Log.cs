using Packet.Agent.Boot;
using Microsoft.Extensions.Logging;
using Packet.Agent.Copy;
using Packet.Agent.Home;
using Packet.Agent.Posix;

namespace Packet.Agent.Steps;

/// <summary>The seed step's log lines: the plan, progress, each entry's problem, what the volume did not keep.</summary>
public sealed partial class SeedHomeStep
{
    private sealed class Observer(ILogger logger, string source, string destination, TimeProvider clock) : ISeedObserver
    {
        private readonly long _started = clock.GetTimestamp();

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
            // On-disk bytes: a sparse file's holes cost neither time nor space.
            long bytes = Interlocked.Read(ref report.AllocatedBytes);
            var progress = SeedProgress.Of(report.Entries, bytes, total, clock.GetElapsedTime(_started));
            string eta = progress.Left is { } left ? Units.Duration(left) : "unknown";
            Log.Progress(logger, Units.Count(report.Entries), Units.Count(total.Entries), Units.Bytes(bytes), Units.Bytes(total.AllocatedBytes), progress.Percent, Units.Bytes(progress.BytesPerSecond), eta);
        }

        public void Problem(CopyProblem problem)
        {
            Log.EntryProblem(logger, problem.Path.Length == 0 ? "." : NativeName.Display(problem.Path), problem.Detail);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = StepNumber.Seed, Level = LogLevel.Information, Message = "waiting for the workspace lock, held by {Holder} ({Waited} so far)")]
        public static partial void WaitingForLock(ILogger logger, string holder, string waited);

        [LoggerMessage(EventId = StepNumber.Seed, Level = LogLevel.Information, Message = "resuming a seed an earlier boot did not finish; complete files are kept")]
        public static partial void Resuming(ILogger logger);

        [LoggerMessage(EventId = StepNumber.Seed, Level = LogLevel.Information, Message = "{Destination} already exists without a marker: copying only what it lacks; nothing in it is replaced")]
        public static partial void Merging(ILogger logger, string destination);

        [LoggerMessage(EventId = StepNumber.Seed, Level = LogLevel.Information, Message = "seeding {Destination} from {Source}: {Entries}, {Bytes} to copy, {Free} free on the volume")]
        public static partial void Planned(ILogger logger, string destination, string source, string entries, string bytes, string free);

        [LoggerMessage(EventId = StepNumber.Seed, Level = LogLevel.Information, Message = "copying: {Entries} of {TotalEntries} entries, {Bytes} of {TotalBytes} ({Percent}%), {Rate}/s, about {Eta} left")]
        public static partial void Progress(ILogger logger, string entries, string totalEntries, string bytes, string totalBytes, double percent, string rate, string eta);

        [LoggerMessage(EventId = StepNumber.Seed, Level = LogLevel.Warning, Message = "left out {Path}: {Detail}")]
        public static partial void EntryProblem(ILogger logger, string path, string detail);

        [LoggerMessage(EventId = StepNumber.Seed, Level = LogLevel.Information, Message = "{Action}")]
        public static partial void Upgrade(ILogger logger, string action);

        [LoggerMessage(EventId = StepNumber.Seed, Level = LogLevel.Warning, Message = "could not record the manifest of the image's home ({Reason}); image changes will be brought in once it is recorded")]
        public static partial void ManifestNotRecorded(ILogger logger, string reason);

        [LoggerMessage(EventId = StepNumber.Seed, Level = LogLevel.Warning, Message = "not preserved on this volume: {What}, e.g. {Example} ({Reason})")]
        public static partial void NotPreserved(ILogger logger, string what, string example, string reason);

        [LoggerMessage(EventId = StepNumber.Seed, Level = LogLevel.Warning, Message = "... and {Count} more problems, counted in the summary but not named")]
        public static partial void MoreProblems(ILogger logger, int count);
    }
}
