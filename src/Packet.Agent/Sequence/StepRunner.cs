using Microsoft.Extensions.Logging;
using Packet.Agent.Boot;
using Packet.Agent.Steps;

namespace Packet.Agent.Sequence;

/// <summary>
/// Runs the steps of one boot: a step runs only while the boot goes on; in a dry run its decision
/// is recorded, otherwise carried out; its outcome is logged (one line, named after the step) and
/// recorded; its policy and --strict decide whether a problem stops the boot; a stop signal stops it.
/// A step that throws has a problem of its own: the pod's boot does not crash with it.
/// </summary>
internal sealed partial class StepRunner(BootSettings settings, ILoggerFactory loggers, TimeProvider clock)
{
    private readonly ILogger _log = loggers.CreateLogger(StepId.Boot.Name);
    private readonly long _started = clock.GetTimestamp();
    private string? _failure;

    public BootSettings Settings => settings;

    public DateTimeOffset StartedAt { get; } = clock.GetUtcNow();

    public TimeSpan Elapsed => clock.GetElapsedTime(_started);

    public List<StepRecord> Records { get; } = [];

    /// <summary>Decides and (unless dry) applies one step; its value, or default when it did not run or had none.</summary>
    /// <param name="step">The step.</param>
    /// <param name="input">What the previous step handed on.</param>
    /// <param name="afterFailure">Run even though an earlier step stopped the boot (the marker after a complete copy).</param>
    public TOut? Step<TIn, TOut>(IBootStep<TIn, TOut> step, TIn input, bool afterFailure = false)
    {
        if (settings.Stop.Requested || (_failure is not null && !afterFailure))
        {
            return default;
        }

        long started = clock.GetTimestamp();
        StepResult result;
        TOut? value = default;
        IReadOnlyList<PlannedChange> changes = [];
        try
        {
            using var plan = step.Decide(input, settings);
            changes = plan.Changes;
            (result, value) = settings.Options.DryRun || plan is SettledPlan<TOut> ? (plan.Preview, plan.Planned) : step.Apply(plan, settings);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            result = StepResult.Problem($"unexpected {e.GetType().Name}: {e.Message}");
        }

        string? stop = null;
        if (result.Outcome == StepOutcome.Warning && (step.Policy == FailurePolicy.FailBoot || settings.Options.Strict))
        {
            string why = step.Policy == FailurePolicy.FailBoot ? "required" : "--strict";
            stop = $"{step.Id.Name}: {result.Summary}";
            result = result with { Outcome = StepOutcome.Failed, Summary = $"{result.Summary}; the boot fails ({why})" };
        }
        else if (result.Outcome == StepOutcome.Failed)
        {
            stop = $"{step.Id.Name}: {result.Summary}";
        }

        var logger = loggers.CreateLogger(step.Id.Name);
        var eventId = new EventId(step.Id.Number, step.Id.Name);
        if (result.Replanned is { } replanned)
        {
            // Decided again under the lock: the work differs from what the plan (and a dry run) said.
            LoggerMessage.Define<string>(LogLevel.Information, eventId, "re-planned: {Replanned}")(logger, replanned.Reason, null);
        }

        Records.Add(new StepRecord(step.Id, result.Outcome, result.Summary, clock.GetElapsedTime(started), changes, result.Replanned?.Reason));
        var (level, template) = result.Outcome switch
        {
            StepOutcome.Ok => (LogLevel.Information, "{Summary}"),
            StepOutcome.Skipped => (LogLevel.Information, "skipped: {Summary}"),
            StepOutcome.Warning => (LogLevel.Warning, "{Summary}"),
            _ => (LogLevel.Error, "{Summary}"),
        };
        LoggerMessage.Define<string>(level, eventId, template)(logger, result.Summary, null);
        _failure ??= stop;
        return value;
    }

    /// <summary>The boot's exit code and the reason it failed: a stop signal, COMMAND that cannot run, or a step that stopped it.</summary>
    public (ExitCode ExitCode, string? Failure) Ending(ExecDecision? exec)
    {
        if (settings.Stop.Requested)
        {
            // Signalled: nothing more is started, COMMAND included; the report and the log say where it stopped.
            string during = Records.Count > 0 ? Records[^1].Name : "the start";
            var steps = StepId.Sequence.Where(id => id != StepId.Exec || settings.Options.Command.Count > 0);
            var notRun = steps.Except(Records.Select(r => r.Step)).Select(id => id.Name).ToArray();
            Log.Stopped(_log, settings.Stop.SignalName, during, notRun.Length == 0 ? "nothing" : string.Join(", ", notRun));
            return (ExitCode.StoppedBySignal + settings.Stop.Signal, $"stopped by {settings.Stop.SignalName} during {during}");
        }

        if (exec is { Plan: null, FailureCode: var code } && _failure is not null)
        {
            return (code, exec.Failure);
        }

        return _failure is null ? (ExitCode.Success, null) : (ExitCode.BootFailed, _failure);
    }

    public void Warn(string reason) => Log.Warning(_log, reason);

    public void Note(string message) => Log.Note(_log, message);

    public void LogEnd(ExitCode exitCode)
    {
        string outline = string.Join(", ", Records.Select(r => $"{r.Name} {BootReportJson.WireName(r.Outcome)}"));
        int warnings = Records.Count(r => r.Outcome == StepOutcome.Warning);
        if (exitCode == ExitCode.Success)
        {
            Log.Finished(_log, Units.Duration(Elapsed), warnings, outline);
        }
        else
        {
            Log.Failed(_log, Units.Duration(Elapsed), (int)exitCode, outline);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = StepNumber.Boot, Level = LogLevel.Warning, Message = "{Reason}")]
        public static partial void Warning(ILogger logger, string reason);

        [LoggerMessage(EventId = StepNumber.Boot, Level = LogLevel.Information, Message = "{Message}")]
        public static partial void Note(ILogger logger, string message);

        [LoggerMessage(EventId = StepNumber.Boot, Level = LogLevel.Warning, Message = "stopped by {Signal} during {Step}; not run: {NotRun}")]
        public static partial void Stopped(ILogger logger, string signal, string step, string notRun);

        [LoggerMessage(EventId = StepNumber.Boot, Level = LogLevel.Information, Message = "boot finished in {Duration}, warnings: {Warnings}; {Outline}")]
        public static partial void Finished(ILogger logger, string duration, int warnings, string outline);

        [LoggerMessage(EventId = StepNumber.Boot, Level = LogLevel.Error, Message = "boot failed after {Duration} (exit {ExitCode}): {Outline}")]
        public static partial void Failed(ILogger logger, string duration, int exitCode, string outline);
    }
}
