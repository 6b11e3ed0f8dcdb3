using Microsoft.Extensions.Logging;
using Packet.Agent.Exec;
using Packet.Agent.Json;
using Packet.Agent.Operations;
using Packet.Agent.Steps;

namespace Packet.Agent.Boot;

/// <summary>The steps of a boot, built by Program from real adapters or by tests from fakes.</summary>
public sealed record BootSteps(IBootStep Guard, IBootStep Seed, IBootStep Marker, IBootStep Profile, GpuCheckStep Gpu, IBootStep Hooks, ExecStep Exec);

/// <summary>How a boot ended: the exit code, why it failed, or what to execve.</summary>
public sealed record BootOutcome(ExitCode ExitCode, string? FailureReason, ExecPlan? Exec, IReadOnlyList<StepRecord> Steps);

/// <summary>
/// The boot, in CONTRACT.md's order. This is the one place that decides what a step's problem
/// means (its policy, and --strict); no step exits the process or decides for the others.
/// </summary>
public sealed partial class BootSequence(BootSteps steps, ILoggerFactory loggers, IBootReportWriter reports, TimeProvider clock)
{
    private readonly ILogger _log = loggers.CreateLogger("boot");

    public BootOutcome Run(BootContext context)
    {
        var startedAt = clock.GetUtcNow();
        var started = System.Diagnostics.Stopwatch.StartNew();
        var records = new List<StepRecord>();
        string? failure = null;
        ExecPlan? exec = null;
        var exitCode = ExitCode.Success;
        try
        {
            // 5 begins now and is collected in its turn: nvidia-smi can take seconds, the copy overlaps it.
            steps.Gpu.Start(context.Options, context.Stop.Token);

            // 1. Guard: without a volume nothing persists, but the GPU check and COMMAND still run.
            failure = RunStep(steps.Guard, context, records);
            if (failure is null && context.PersistenceAvailable)
            {
                try
                {
                    // 2. Seed the home on first boot (takes the workspace lock when it must copy).
                    // 3. Marker: last, atomically, only after a complete seed.
                    // 4. Shell profile: /workspace/bin exists and is on PATH through the managed block.
                    failure = RunStep(steps.Seed, context, records);

                    // A complete seed is marked even when --strict fails the boot over what the volume
                    // could not hold: copying again would lose the same, so the next boot must not.
                    if (failure is null || context.SeedReport is not null)
                    {
                        failure = RunStep(steps.Marker, context, records) ?? failure;
                    }

                    failure ??= RunStep(steps.Profile, context, records);
                }
                finally
                {
                    context.ReleaseLock();
                }
            }

            // 5. GPU check.
            failure ??= RunStep(steps.Gpu, context, records);

            // 6. Hooks: setup.sh, first-boot.d, boot.d, requirements.txt; as the home's owner.
            failure ??= RunStep(steps.Hooks, context, records);

            // 7. Exec COMMAND, when given: resolved here, replaced by Program once the logs are flushed.
            if (failure is null && context.Options.Command.Count > 0 && !context.Stop.Requested)
            {
                var preparing = System.Diagnostics.Stopwatch.StartNew();
                var decision = steps.Exec.Prepare(context);
                if (decision.Plan is null)
                {
                    Log.CommandUnavailable(loggers.CreateLogger("exec"), decision.Failure!);
                    exitCode = decision.FailureCode;
                    failure = decision.Failure;
                    records.Add(new StepRecord("exec", StepOutcome.Failed, decision.Failure!, preparing.Elapsed));
                }
                else
                {
                    exec = decision.Plan;
                    var execLog = loggers.CreateLogger("exec");
                    string command = $"{exec.Path} {string.Join(' ', exec.Arguments.Skip(1))}";
                    if (decision.Home is { IsWarning: true } fallback)
                    {
                        // Counted like any step's warning (summary, report, banner); with --strict it stops the boot.
                        Log.HomeNotLinked(execLog, fallback.Summary);
                        bool stop = context.Options.Strict;
                        records.Add(new StepRecord("exec", stop ? StepOutcome.Failed : StepOutcome.Warning, stop ? $"{fallback.Summary}; the boot fails (--strict)" : fallback.Summary, preparing.Elapsed));
                        if (stop)
                        {
                            failure = $"exec: {fallback.Summary}";
                            exec = null;
                        }
                    }
                    else
                    {
                        if (decision.Home is { } wired)
                        {
                            Log.HomeLinked(execLog, wired.Summary);
                        }

                        records.Add(new StepRecord("exec", StepOutcome.Ok, decision.Home is { } home ? $"{home.Summary}; {command}" : command, preparing.Elapsed));
                    }

                    if (exec is not null && context.Options.DryRun)
                    {
                        Log.WouldExecute(execLog, exec.Path, string.Join(' ', exec.Arguments.Skip(1)));
                        exec = null;
                    }
                    else if (exec is not null)
                    {
                        Log.Executing(execLog, exec.Path, string.Join(' ', exec.Arguments.Skip(1)));
                    }
                }
            }
        }
        finally
        {
            steps.Gpu.Dispose();
        }

        if (context.Stop.Requested)
        {
            // Signalled: nothing more is started, COMMAND included; the report and the log say where it stopped.
            exec = null;
            string during = records.Count > 0 ? records[^1].Name : "the start";
            var notRun = StepNames(context).Except(records.Select(r => r.Name)).ToArray();
            failure = $"stopped by {context.Stop.SignalName} during {during}";
            exitCode = ExitCode.StoppedBySignal + context.Stop.Signal;
            Log.Stopped(_log, context.Stop.SignalName, during, notRun.Length == 0 ? "nothing" : string.Join(", ", notRun));
        }

        if (failure is not null && exitCode == ExitCode.Success)
        {
            exitCode = ExitCode.BootFailed;
        }

        if (context.PersistenceAvailable && !context.Options.DryRun)
        {
            var report = Report(context, records, exitCode, startedAt, started.Elapsed);
            if (reports.Write(context.Options.Workspace, report) is { } notWritten)
            {
                Log.ReportNotWritten(_log, notWritten);
            }
        }

        string outline = string.Join(", ", records.Select(r => $"{r.Name} {r.Outcome.ToString().ToLowerInvariant()}"));
        int warnings = records.Count(r => r.Outcome == StepOutcome.Warning);
        if (exitCode == ExitCode.Success)
        {
            Log.Finished(_log, Units.Duration(started.Elapsed), warnings, outline);
        }
        else
        {
            Log.Failed(_log, Units.Duration(started.Elapsed), (int)exitCode, outline);
        }

        return new BootOutcome(exitCode, failure, exec, records);
    }

    private BootReport Report(BootContext context, List<StepRecord> records, ExitCode exitCode, DateTimeOffset startedAt, TimeSpan duration)
    {
        var warnings = records.Where(r => r.Outcome is StepOutcome.Warning or StepOutcome.Failed).Select(r => $"{r.Name}: {r.Summary}").ToArray();
        string outcome = context.Stop.Requested ? "stopped" : exitCode != ExitCode.Success ? "failed" : warnings.Length > 0 ? "warnings" : "ok";
        return new BootReport(
            AgentInfo.Name,
            AgentInfo.Version,
            context.Options.ImageVersion,
            startedAt,
            Math.Round(duration.TotalSeconds, 3),
            (int)exitCode,
            outcome,
            records.Select(r => new StepReport(r.Name, r.Outcome.ToString().ToLowerInvariant(), Math.Round(r.Duration.TotalSeconds, 3), r.Summary)).ToArray(),
            context.SeedReport is { } seed ? MarkerStep.Counts(seed) : null,
            steps.Gpu.Gpus,
            warnings);
    }

    private static string[] StepNames(BootContext context)
    {
        string[] names = ["guard", "seed", "marker", "profile", "gpu", "hooks"];
        return context.Options.Command.Count > 0 ? [.. names, "exec"] : names;
    }

    /// <summary>Runs one step, logs its outcome, and returns the reason the boot must stop, if it must.</summary>
    private string? RunStep(IBootStep step, BootContext context, List<StepRecord> records)
    {
        if (context.Stop.Requested)
        {
            return $"stopped by {context.Stop.SignalName}";
        }

        var logger = loggers.CreateLogger(step.Name);
        var eventId = new EventId(step.Number, step.Name);
        var started = System.Diagnostics.Stopwatch.StartNew();
        StepResult result;
        try
        {
            result = step.Run(context);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A bug in one step must not take the pod's boot down with it: it is that step's problem.
            result = StepResult.Problem($"unexpected {e.GetType().Name}: {e.Message}");
        }

        string? stop = null;
        if (result.Outcome == StepOutcome.Warning && (step.Policy == FailurePolicy.FailBoot || context.Options.Strict))
        {
            string why = step.Policy == FailurePolicy.FailBoot ? "required" : "--strict";
            stop = $"{step.Name}: {result.Summary}";
            result = result with { Outcome = StepOutcome.Failed, Summary = $"{result.Summary}; the boot fails ({why})" };
        }

        if (context.Stop.Requested)
        {
            stop ??= $"stopped by {context.Stop.SignalName}";
        }

        records.Add(new StepRecord(step.Name, result.Outcome, result.Summary, started.Elapsed));
        var (level, template) = result.Outcome switch
        {
            StepOutcome.Ok => (LogLevel.Information, "{Summary}"),
            StepOutcome.Skipped => (LogLevel.Information, "skipped: {Summary}"),
            StepOutcome.Warning => (LogLevel.Warning, "{Summary}"),
            _ => (LogLevel.Error, "{Summary}"),
        };
        LoggerMessage.Define<string>(level, eventId, template)(logger, result.Summary, null);
        return stop;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = ExecStep.Number, Level = LogLevel.Information, Message = "replacing the agent with {Command} {Arguments}")]
        public static partial void Executing(ILogger logger, string command, string arguments);

        [LoggerMessage(EventId = ExecStep.Number, Level = LogLevel.Error, Message = "{Reason}")]
        public static partial void CommandUnavailable(ILogger logger, string reason);

        [LoggerMessage(EventId = ExecStep.Number, Level = LogLevel.Information, Message = "would replace the agent with {Command} {Arguments} (dry run: not started)")]
        public static partial void WouldExecute(ILogger logger, string command, string arguments);

        [LoggerMessage(EventId = ExecStep.Number, Level = LogLevel.Information, Message = "{Summary}")]
        public static partial void HomeLinked(ILogger logger, string summary);

        [LoggerMessage(EventId = ExecStep.Number, Level = LogLevel.Warning, Message = "{Summary}")]
        public static partial void HomeNotLinked(ILogger logger, string summary);

        [LoggerMessage(EventId = 0, Level = LogLevel.Warning, Message = "{Reason}")]
        public static partial void ReportNotWritten(ILogger logger, string reason);

        [LoggerMessage(EventId = 0, Level = LogLevel.Warning, Message = "stopped by {Signal} during {Step}; not run: {NotRun}")]
        public static partial void Stopped(ILogger logger, string signal, string step, string notRun);

        [LoggerMessage(EventId = 0, Level = LogLevel.Information, Message = "boot finished in {Duration}, warnings: {Warnings}; {Outline}")]
        public static partial void Finished(ILogger logger, string duration, int warnings, string outline);

        [LoggerMessage(EventId = 0, Level = LogLevel.Error, Message = "boot failed after {Duration} (exit {ExitCode}): {Outline}")]
        public static partial void Failed(ILogger logger, string duration, int exitCode, string outline);
    }
}
