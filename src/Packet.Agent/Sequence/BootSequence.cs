using Microsoft.Extensions.Logging;
using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Exec;
using Packet.Agent.Gpu;
using Packet.Agent.Steps;
using Packet.Agent.Workspace;

namespace Packet.Agent.Sequence;

/// <summary>The steps of a boot, built by Program from real adapters or by tests from fakes.</summary>
public sealed record BootSteps(
    IBootStep<BootOptions, DirectoryHandle?> Guard,
    IBootStep<DirectoryHandle, HomeState> Seed,
    IBootStep<HomeState, HomeState> Marker,
    IBootStep<HomeState, NoValue> Profile,
    IGpuStep Gpu,
    IBootStep<HomeState?, NoValue> Hooks,
    IBootStep<HomeState?, NoValue> Ssh,
    IBootStep<HomeState?, ExecDecision> Exec);

/// <summary>How a boot ended: the exit code, why it failed, or what to execve.</summary>
public sealed record BootOutcome(ExitCode ExitCode, string? FailureReason, ExecPlan? Exec, IReadOnlyList<StepRecord> Steps);

/// <summary>
/// The boot, in the order docs/boot-sequence.md gives: each step decides, then (unless this is a dry run) carries its
/// decision out, and hands its result to the next. <see cref="StepRunner"/> is the one place that
/// decides what a step's problem means (its policy, --strict) and what a stop signal ends.
/// </summary>
public sealed class BootSequence(BootSteps steps, ILoggerFactory loggers, IBootReportWriter reports, TimeProvider clock)
{
    /// <param name="options">What the boot was asked to do.</param>
    /// <param name="stop">The stop request signals raise.</param>
    /// <param name="account">The home's account (<see cref="HomeAccount.Resolve"/>), from the image or the operator.</param>
    public BootOutcome Run(BootOptions options, StopRequest stop, AccountChoice account)
    {
        var run = new StepRunner(new BootSettings(options, stop, account), loggers, clock);
        try
        {
            // 5 begins now and is collected in its turn: nvidia-smi can take seconds, the copy overlaps it.
            steps.Gpu.Start(run.Settings);

            // 1. Guard: the workspace, open; without one nothing persists, but the GPU check and COMMAND still run.
            using var workspace = run.Step(steps.Guard, options);
            HomeState? home = null;
            if (workspace is not null)
            {
                // 2. Seed on first boot, or bring the image's changes in (takes the workspace lock when it must write).
                home = run.Step(steps.Seed, workspace);
                using (home?.Lock)
                {
                    // 3. Marker: last, atomically, after a complete copy, even when --strict stopped the boot over its losses.
                    home = run.Step(steps.Marker, home ?? new HomeState(workspace, HomeStatus.NotSeeded), afterFailure: home?.Copied is not null) ?? home;

                    // 4. Shell profile: /workspace/bin exists and is on PATH through the managed block.
                    run.Step(steps.Profile, home ?? new HomeState(workspace, HomeStatus.NotSeeded));
                }
            }

            // 5. GPU check, 6. hooks (as the home's owner), 7. sshd in the background, 8. exec COMMAND (Program replaces the agent once the logs are flushed).
            var gpus = run.Step(steps.Gpu, default(NoValue));
            run.Step(steps.Hooks, home);
            run.Step(steps.Ssh, home);
            var exec = options.Command.Count > 0 ? run.Step(steps.Exec, home) : null;
            return Finish(run, workspace, home, exec, gpus ?? []);
        }
        finally
        {
            steps.Gpu.Dispose();
        }
    }

    private BootOutcome Finish(StepRunner run, DirectoryHandle? workspace, HomeState? home, ExecDecision? exec, IReadOnlyList<GpuInfo> gpus)
    {
        var (exitCode, failure) = run.Ending(exec);
        var options = run.Settings.Options;
        if (!options.DryRun)
        {
            Keep(run, workspace, Report(run, exitCode, home?.Copied, gpus));
        }

        run.LogEnd(exitCode);
        return new BootOutcome(exitCode, failure, failure is null && !options.DryRun ? exec?.Plan : null, run.Records);
    }

    /// <summary>
    /// The report goes to the volume; when the volume cannot take it (no usable workspace, a full
    /// one), to the container's runtime directory, so that status there still says what this boot did.
    /// </summary>
    private void Keep(StepRunner run, DirectoryHandle? workspace, BootReport report)
    {
        string? refused = workspace is null
            ? $"the workspace was not usable ({run.Records.FirstOrDefault(r => r.Step == StepId.Guard)?.Summary ?? "the boot stopped before the guard"})"
            : reports.Write(workspace, report);
        if (refused is null)
        {
            return;
        }

        string path = Path.Join(reports.AsideDirectory, BootReportAside.FileName);
        if (reports.WriteAside(report with { KeptAside = refused }) is { } notAside)
        {
            run.Warn($"could not write the boot report to the volume ({refused}) nor to {path} ({notAside}): status will not know this boot");
        }
        else if (workspace is not null)
        {
            run.Warn($"could not write the boot report to the volume: {refused}; kept in {path} for status in this container");
        }
        else
        {
            run.Note($"boot report kept in {path} (no usable workspace): status in this container reads it there");
        }
    }

    private static BootReport Report(StepRunner run, ExitCode exitCode, Copy.CopyReport? seed, IReadOnlyList<GpuInfo> gpus)
    {
        var records = run.Records;
        var warnings = records.Where(r => r.Outcome is StepOutcome.Warning or StepOutcome.Failed).Select(r => $"{r.Name}: {r.Summary}").ToArray();
        var outcome = run.Settings.Stop.Requested ? BootEnding.Stopped : exitCode != ExitCode.Success ? BootEnding.Failed : warnings.Length > 0 ? BootEnding.Warnings : BootEnding.Ok;
        return new BootReport(
            AgentInfo.Name,
            AgentInfo.Version,
            run.Settings.Options.ImageVersion,
            run.StartedAt,
            Math.Round(run.Elapsed.TotalSeconds, 3),
            (int)exitCode,
            outcome,
            records.Select(r => new StepReport(r.Name, r.Outcome, Math.Round(r.Duration.TotalSeconds, 3), r.Summary, r.Replanned)).ToArray(),
            seed is null ? null : MarkerStep.Counts(seed),
            gpus,
            warnings,
            run.Settings.Options.Workspace);
    }
}
