using System.Collections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Exec;
using Packet.Agent.Gpu;
using Packet.Agent.Home;
using Packet.Agent.Sequence;
using Packet.Agent.Steps;
using Packet.Agent.TestSupport;
using Packet.Agent.Workspace;
using Xunit;

namespace Packet.Agent.Tests;

public sealed class BootSequenceTests
{
    private const string OneGpu = "0, NVIDIA A100, GPU-1, 40960, 0, 550.1\n";

    private static BootOptions Options(bool strict = false, GpuMode gpu = GpuMode.Auto, string[]? command = null) => new()
    {
        Workspace = "/workspace",
        Home = "/root",
        NvidiaSmi = "nvidia-smi",
        TerminationLog = "/dev/termination-log",
        Strict = strict,
        Gpu = gpu,
        Command = command ?? [],
    };

    private static FakeStep<DirectoryHandle, HomeState> SeedThat(StepResult result, HomeStatus status, Action<BootSettings>? effect = null) =>
        new("seed", 2, result, workspace => new HomeState(workspace, status, status == HomeStatus.Copied ? new Copy.CopyReport() : null), effect: effect);

    private static FakeStep<BootOptions, DirectoryHandle?> NoWorkspace() =>
        new("guard", 1, StepResult.Problem("/workspace does not exist"), _ => null);

    private sealed class Harness
    {
        public Harness()
        {
            Guard = new("guard", 1, StepResult.Ok("present"), _ => DirectoryHandle.Open(Posix, "/workspace"));
        }

        public FakeStep<BootOptions, DirectoryHandle?> Guard { get; init; }

        public FakeStep<DirectoryHandle, HomeState> Seed { get; init; } = SeedThat(StepResult.Ok("copied"), HomeStatus.NotSeeded);

        public FakeStep<HomeState, HomeState> Marker { get; init; } = new("marker", 3, StepResult.Ok("wrote"), home => home);

        public FakeStep<HomeState, NoValue> Profile { get; init; } = new("profile", 4, StepResult.Ok("block"), _ => default);

        public FakeStep<HomeState?, NoValue> Hooks { get; init; } = new("hooks", 6, StepResult.Ok("ran"), _ => default);

        public FakeStep<HomeState?, NoValue> Ssh { get; init; } = new("ssh", 7, StepResult.Ok("sshd listening"), _ => default);

        public ProcessResult Smi { get; init; } = new(0, OneGpu, string.Empty, false);

        /// <summary>Runs nvidia-smi instead of answering with <see cref="Smi"/>.</summary>
        public IProcessRunner? Runner { get; init; }

        public string[] Executables { get; init; } = ["/usr/bin/nvidia-smi", "/usr/bin/bash"];

        public List<BootReport> Reports { get; } = [];

        /// <summary>What the report writer answers: null when written, else why not.</summary>
        public string? ReportNotWritten { get; init; }

        /// <summary>Reports kept in the runtime directory because the volume could not take them.</summary>
        public List<BootReport> Aside { get; } = [];

        /// <summary>What the runtime directory answers: null when written, else why not.</summary>
        public string? AsideNotWritten { get; init; }

        public ListLoggerProvider Logs { get; } = new();

        /// <summary>What the exec step's live-home wiring sees and changes: a table, never the machine's /root.</summary>
        public PathTablePosix Posix { get; init; } = new PathTablePosix().Directory("/root").Directory("/workspace").Directory("/workspace/home");

        public StopRequest Stop { get; } = new();

        public BootOutcome Run(BootOptions options)
        {
            var fileSystem = FakeFileSystem.With("/usr/bin/nvidia-smi", "/usr/bin/bash", "/usr/bin/notes.txt");
            var resolver = FakeFileSystem.Resolver(fileSystem, Executables);
            var gpu = new GpuCheckStep(new NvidiaSmi(Runner ?? new FakeProcessRunner(Smi), resolver, () => "/usr/bin"), NullLogger.Instance, options.Gpu);
            var exec = new ExecStep(resolver, TestAccounts.NoProgramChecks, () => new Hashtable { ["PATH"] = "/usr/bin", ["HOME"] = "/root" }, new LiveHome(Posix, _ => false, () => true, TimeProvider.System));
            var steps = new BootSteps(Guard, Seed, Marker, Profile, gpu, Hooks, Ssh, exec);
            var writer = new FakeReportWriter(Reports, Aside, ReportNotWritten, AsideNotWritten);
            using var loggers = new LoggerFactory([Logs]);
            return new BootSequence(steps, loggers, writer, TimeProvider.System).Run(options, Stop, TestAccounts.Root);
        }
    }

    [Fact]
    public void The_steps_run_in_contract_order_and_a_clean_boot_exits_0()
    {
        var outcome = new Harness().Run(Options());

        Assert.Equal(["guard", "seed", "marker", "profile", "gpu", "hooks", "ssh"], outcome.Steps.Select(s => s.Name));
        Assert.All(outcome.Steps, s => Assert.Equal(StepOutcome.Ok, s.Outcome));
        Assert.Equal(ExitCode.Success, outcome.ExitCode);
        Assert.Null(outcome.Exec);
    }

    [Fact]
    public void Without_a_workspace_the_persistence_steps_are_skipped_but_gpu_and_exec_still_happen()
    {
        var harness = new Harness { Guard = NoWorkspace() };

        var outcome = harness.Run(Options(command: ["bash"]));

        Assert.Equal(ExitCode.Success, outcome.ExitCode);
        Assert.Equal(["guard", "gpu", "hooks", "ssh", "exec"], outcome.Steps.Select(s => s.Name));
        Assert.Equal(StepOutcome.Warning, outcome.Steps[0].Outcome);
        Assert.Equal(0, harness.Seed.Runs + harness.Marker.Runs + harness.Profile.Runs);
        Assert.Equal("/usr/bin/bash", outcome.Exec?.Path);
    }

    [Fact]
    public void Strict_turns_a_warning_into_a_failed_boot_that_stops_there()
    {
        var harness = new Harness { Guard = NoWorkspace() };

        var outcome = harness.Run(Options(strict: true, command: ["bash"]));

        Assert.Equal(ExitCode.BootFailed, outcome.ExitCode);
        Assert.Equal("guard: /workspace does not exist", outcome.FailureReason);
        Assert.Equal(StepOutcome.Failed, Assert.Single(outcome.Steps).Outcome);
        Assert.Null(outcome.Exec);
    }

    [Fact]
    public void A_seed_problem_is_a_warning_and_the_boot_goes_on()
    {
        var harness = new Harness { Seed = SeedThat(StepResult.Problem("volume full"), HomeStatus.NotSeeded) };

        var outcome = harness.Run(Options());

        Assert.Equal(ExitCode.Success, outcome.ExitCode);
        Assert.Equal(StepOutcome.Warning, outcome.Steps.Single(s => s.Name == "seed").Outcome);
        Assert.Equal(1, harness.Profile.Runs);
    }

    [Fact]
    public void Strict_still_marks_a_complete_seed_that_warned_then_fails_the_boot()
    {
        var harness = new Harness { Seed = SeedThat(StepResult.Problem("not preserved on this volume: owners of 3 entries"), HomeStatus.Copied) };

        var outcome = harness.Run(Options(strict: true, command: ["bash"]));

        Assert.Equal(ExitCode.BootFailed, outcome.ExitCode);
        Assert.Equal("seed: not preserved on this volume: owners of 3 entries", outcome.FailureReason);
        Assert.Equal(1, harness.Marker.Runs);
        Assert.Equal(0, harness.Profile.Runs);
        Assert.Equal(["guard", "seed", "marker"], outcome.Steps.Select(s => s.Name));
    }

    [Fact]
    public void Strict_does_not_mark_a_seed_that_did_not_complete()
    {
        var harness = new Harness { Seed = SeedThat(StepResult.Problem("the copy stopped: No space left on device (ENOSPC)"), HomeStatus.NotSeeded) };

        var outcome = harness.Run(Options(strict: true));

        Assert.Equal(ExitCode.BootFailed, outcome.ExitCode);
        Assert.Equal(0, harness.Marker.Runs);
    }

    [Fact]
    public void A_stop_signal_during_the_seed_runs_nothing_more_and_exits_128_plus_the_signal()
    {
        var harness = new Harness { Seed = SeedThat(StepResult.Problem("the copy was stopped before it finished"), HomeStatus.NotSeeded, effect: s => s.Stop.Request(15)) };

        var outcome = harness.Run(Options(command: ["bash"]));

        Assert.Equal((ExitCode)143, outcome.ExitCode);
        Assert.Equal("stopped by SIGTERM during seed", outcome.FailureReason);
        Assert.Null(outcome.Exec);
        Assert.Equal(["guard", "seed"], outcome.Steps.Select(s => s.Name));
        Assert.Equal(0, harness.Marker.Runs + harness.Profile.Runs + harness.Hooks.Runs);
        var report = Assert.Single(harness.Reports);
        Assert.Equal(BootEnding.Stopped, report.Outcome);
        Assert.Equal(143, report.ExitCode);
        Assert.Empty(report.Gpus);
    }

    [Fact]
    public void A_step_that_throws_is_that_steps_warning_not_a_crash()
    {
        var harness = new Harness { Marker = new FakeStep<HomeState, HomeState>("marker", 3, StepResult.Ok("unused"), home => home, effect: _ => throw new InvalidOperationException("boom")) };

        var outcome = harness.Run(Options());

        Assert.Equal(ExitCode.Success, outcome.ExitCode);
        var marker = outcome.Steps.Single(s => s.Name == "marker");
        Assert.Equal(StepOutcome.Warning, marker.Outcome);
        Assert.Contains("boom", marker.Summary);
    }

    [Theory]
    [InlineData(GpuMode.Auto, ExitCode.Success, StepOutcome.Warning)]
    [InlineData(GpuMode.Require, ExitCode.BootFailed, StepOutcome.Failed)]
    public void A_GPU_problem_warns_in_auto_and_fails_the_boot_in_require(GpuMode mode, ExitCode exitCode, StepOutcome gpuOutcome)
    {
        var harness = new Harness { Smi = new ProcessResult(9, "NVIDIA-SMI has failed", string.Empty, false) };

        var outcome = harness.Run(Options(gpu: mode, command: ["bash"]));

        Assert.Equal(exitCode, outcome.ExitCode);
        Assert.Equal(gpuOutcome, outcome.Steps.Single(s => s.Name == "gpu").Outcome);
        Assert.Equal(mode == GpuMode.Auto, outcome.Exec is not null);
        Assert.Equal(mode == GpuMode.Auto ? 1 : 0, harness.Hooks.Runs);
    }

    [Fact]
    public void A_hook_problem_is_a_warning_unless_strict()
    {
        var harness = new Harness { Hooks = new FakeStep<HomeState?, NoValue>("hooks", 6, StepResult.Problem("setup.sh exited with code 3"), _ => default) };

        Assert.Equal(ExitCode.Success, harness.Run(Options(command: ["bash"])).ExitCode);
        Assert.Equal(ExitCode.BootFailed, harness.Run(Options(strict: true, command: ["bash"])).ExitCode);
    }

    [Fact]
    public void Gpu_off_skips_the_check()
    {
        var outcome = new Harness { Smi = new ProcessResult(9, "broken", string.Empty, false) }.Run(Options(gpu: GpuMode.Off));

        Assert.Equal(StepOutcome.Skipped, outcome.Steps.Single(s => s.Name == "gpu").Outcome);
        Assert.Equal(ExitCode.Success, outcome.ExitCode);
    }

    [Fact]
    public void The_command_runs_with_workspace_bin_first_on_PATH()
    {
        var outcome = new Harness().Run(Options(command: ["bash", "-l"]));

        Assert.Equal(["bash", "-l"], outcome.Exec!.Arguments);
        Assert.Contains("PATH=/workspace/bin:/usr/bin", outcome.Exec.Environment);
        Assert.Contains("HOME=/root", outcome.Exec.Environment);
    }

    [Fact]
    public void After_a_seed_the_exec_step_links_the_live_home_to_the_persisted_one()
    {
        var harness = new Harness { Seed = SeedThat(StepResult.Ok("copied"), HomeStatus.Seeded) };

        var outcome = harness.Run(Options(command: ["bash"]) with { LinkHome = LinkHomeMode.Auto });

        Assert.Equal(["rename /root -> /root.packet-image", "symlink /root -> /workspace/home"], harness.Posix.Changes);
        Assert.Empty(harness.Posix.Refused);
        Assert.Contains("HOME=/root", outcome.Exec!.Environment);
    }

    [Fact]
    public void A_live_home_left_unlinked_is_the_exec_steps_warning_in_the_summary_and_the_report()
    {
        var harness = new Harness
        {
            Seed = SeedThat(StepResult.Ok("copied"), HomeStatus.Seeded),
            Posix = new PathTablePosix(effectiveUserId: 1000).Directory("/root").Directory("/workspace").Directory("/workspace/home"),
        };

        var lenient = harness.Run(Options(command: ["bash"]));
        var strict = harness.Run(Options(strict: true, command: ["bash"]));

        Assert.Equal(ExitCode.Success, lenient.ExitCode);
        Assert.Equal(StepOutcome.Warning, lenient.Steps[^1].Outcome);
        Assert.Contains("HOME=/workspace/home for the command only: the agent is not root", lenient.Steps[^1].Summary);
        Assert.Equal(BootEnding.Warnings, harness.Reports[0].Outcome);
        Assert.StartsWith("exec: HOME=/workspace/home for the command only", Assert.Single(harness.Reports[0].Warnings));
        Assert.Equal(ExitCode.BootFailed, strict.ExitCode);
        Assert.Null(strict.Exec);
    }

    [Fact]
    public void Link_home_off_leaves_the_live_home_alone()
    {
        var harness = new Harness { Seed = SeedThat(StepResult.Ok("copied"), HomeStatus.Seeded) };

        harness.Run(Options(command: ["bash"]) with { LinkHome = LinkHomeMode.Off });

        Assert.Empty(harness.Posix.Changes);
        Assert.True(harness.Posix.Exists("/root"));
    }

    [Theory]
    [InlineData("missing", ExitCode.CommandNotFound)]
    [InlineData("notes.txt", ExitCode.CommandNotExecutable)]
    public void A_command_that_cannot_run_gives_the_shells_exit_code(string command, ExitCode exitCode)
    {
        var outcome = new Harness().Run(Options(command: [command]));

        Assert.Equal(exitCode, outcome.ExitCode);
        Assert.Null(outcome.Exec);
        Assert.Contains($"cannot run {command}", outcome.FailureReason);
    }

    [Fact]
    public void Each_boot_with_a_workspace_leaves_a_report_of_its_steps()
    {
        var harness = new Harness { Hooks = new FakeStep<HomeState?, NoValue>("hooks", 6, StepResult.Problem("setup.sh exited with code 3"), _ => default) };

        harness.Run(Options());

        var report = Assert.Single(harness.Reports);
        Assert.Equal(BootEnding.Warnings, report.Outcome);
        Assert.Equal(["guard", "seed", "marker", "profile", "gpu", "hooks", "ssh"], report.Steps.Select(s => s.Name));
        Assert.Equal(StepOutcome.Warning, report.Steps.Single(s => s.Name == "hooks").Outcome);
        Assert.Equal(["hooks: setup.sh exited with code 3"], report.Warnings);
        Assert.Equal("NVIDIA A100", Assert.Single(report.Gpus).Name);
    }

    [Fact]
    public void Without_a_workspace_or_in_a_dry_run_no_report_is_written()
    {
        var withoutWorkspace = new Harness { Guard = NoWorkspace() };
        var dryRun = new Harness();

        var without = withoutWorkspace.Run(Options());
        var dry = dryRun.Run(Options() with { DryRun = true });
        var real = new Harness();
        real.Run(Options());

        Assert.Empty(withoutWorkspace.Reports);
        Assert.Empty(dryRun.Reports);
        // Each boot went through its steps: the report was left out, not the boot cut short.
        Assert.Equal(["guard", "gpu", "hooks", "ssh"], without.Steps.Select(s => s.Name));
        Assert.Equal(["guard", "seed", "marker", "profile", "gpu", "hooks", "ssh"], dry.Steps.Select(s => s.Name));
        Assert.Single(real.Reports);
    }

    [Theory]
    [InlineData(false, false, BootEnding.Ok)]
    [InlineData(true, false, BootEnding.Warnings)]
    [InlineData(true, true, BootEnding.Failed)]
    public void The_report_says_how_the_boot_ended(bool hookProblem, bool strict, BootEnding outcome)
    {
        var harness = new Harness { Hooks = new FakeStep<HomeState?, NoValue>("hooks", 6, hookProblem ? StepResult.Problem("setup.sh exited with code 3") : StepResult.Ok("ran"), _ => default) };

        harness.Run(Options(strict: strict));

        var report = Assert.Single(harness.Reports);
        Assert.Equal(outcome, report.Outcome);
        Assert.Equal(strict ? 1 : 0, report.ExitCode);
        Assert.Equal(hookProblem ? 1 : 0, report.Warnings.Count);
        Assert.All(report.Warnings, w => Assert.StartsWith("hooks: setup.sh exited with code 3", w, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(HomeStatus.Copied, true)]
    [InlineData(HomeStatus.Seeded, false)]
    public void The_report_holds_the_seeds_counts_only_when_this_boot_copied(HomeStatus status, bool counted)
    {
        var harness = new Harness { Seed = SeedThat(StepResult.Ok("copied"), status) };

        harness.Run(Options());

        Assert.Equal(counted, Assert.Single(harness.Reports).Seed is not null);
    }

    [Fact]
    public void A_seed_that_gave_no_home_hands_the_marker_and_profile_an_unseeded_one_and_the_profile_gets_the_markers()
    {
        var failing = new Harness { Seed = new FakeStep<DirectoryHandle, HomeState>("seed", 2, StepResult.Ok("unused"), w => new HomeState(w, HomeStatus.Seeded), effect: _ => throw new IOException("disk gone")) };
        var seeded = new Harness { Seed = SeedThat(StepResult.Ok("copied"), HomeStatus.Seeded) };

        failing.Run(Options());
        seeded.Run(Options());

        Assert.Equal(HomeStatus.NotSeeded, Assert.Single(failing.Marker.Inputs).Status);
        Assert.Equal(HomeStatus.NotSeeded, Assert.Single(failing.Profile.Inputs).Status);
        Assert.Equal(HomeStatus.Seeded, Assert.Single(seeded.Profile.Inputs).Status);
    }

    [Fact]
    public void A_boot_without_GPUs_reports_an_empty_list()
    {
        var harness = new Harness();

        harness.Run(Options(gpu: GpuMode.Off));

        Assert.NotNull(Assert.Single(harness.Reports).Gpus);
        Assert.Empty(harness.Reports[0].Gpus);
    }

    [Fact]
    public void A_report_the_volume_cannot_take_is_kept_in_the_runtime_directory_with_the_reason_and_the_boot_goes_on()
    {
        const string refused = "cannot write /workspace/.packet/last-boot.json: Read-only file system (EROFS)";
        var harness = new Harness { ReportNotWritten = refused };

        var outcome = harness.Run(Options(command: ["bash"]));

        Assert.Equal(ExitCode.Success, outcome.ExitCode);
        Assert.NotNull(outcome.Exec);
        var aside = Assert.Single(harness.Aside);
        Assert.Equal(harness.Reports[0] with { KeptAside = refused }, aside);
        Assert.Equal("/workspace", aside.Workspace);
        Assert.Contains($"Warning: could not write the boot report to the volume: {refused}; kept in /run/packet-agent/last-boot.json for status in this container", harness.Logs.Lines);
    }

    [Fact]
    public void Without_a_usable_workspace_the_report_goes_to_the_runtime_directory_saying_why()
    {
        var harness = new Harness { Guard = NoWorkspace() };

        harness.Run(Options());

        Assert.Empty(harness.Reports);
        var aside = Assert.Single(harness.Aside);
        Assert.Equal("the workspace was not usable (/workspace does not exist)", aside.KeptAside);
        Assert.Equal(BootEnding.Warnings, aside.Outcome);
        Assert.Contains("Information: boot report kept in /run/packet-agent/last-boot.json (no usable workspace): status in this container reads it there", harness.Logs.Lines);
    }

    [Fact]
    public void A_report_neither_the_volume_nor_the_runtime_directory_takes_is_a_warning_and_the_boot_goes_on()
    {
        var harness = new Harness { ReportNotWritten = "the volume is full", AsideNotWritten = "/run is read-only" };

        var outcome = harness.Run(Options());

        Assert.Equal(ExitCode.Success, outcome.ExitCode);
        Assert.Contains("Warning: could not write the boot report to the volume (the volume is full) nor to /run/packet-agent/last-boot.json (/run is read-only): status will not know this boot", harness.Logs.Lines);
    }

    [Fact]
    public void A_dry_run_writes_no_report_anywhere()
    {
        var harness = new Harness { Guard = NoWorkspace() };

        harness.Run(Options() with { DryRun = true });

        Assert.Empty(harness.Reports);
        Assert.Empty(harness.Aside);
    }

    [Fact]
    public void A_marker_that_gave_no_home_leaves_the_profile_the_seeds()
    {
        var harness = new Harness
        {
            Seed = SeedThat(StepResult.Ok("copied"), HomeStatus.Seeded),
            Marker = new FakeStep<HomeState, HomeState>("marker", 3, StepResult.Ok("unused"), home => home, effect: _ => throw new IOException("disk gone")),
        };

        harness.Run(Options());

        Assert.Equal(HomeStatus.Seeded, Assert.Single(harness.Profile.Inputs).Status);
    }

    [Fact]
    public void A_boot_that_ends_before_collecting_nvidia_smi_cancels_it()
    {
        var runner = new UnansweredProcessRunner();
        var harness = new Harness { Guard = NoWorkspace(), Runner = runner };

        harness.Run(Options(strict: true));

        Assert.True(runner.Cancelled);
    }

    /// <summary>An nvidia-smi that never answers (a hung driver): its run ends only when cancelled.</summary>
    private sealed class UnansweredProcessRunner : IProcessRunner
    {
        public bool Cancelled { get; private set; }

        public async Task<ProcessResult> RunAsync(string fileName, IReadOnlyList<string> arguments, TimeSpan timeout, CancellationToken cancellationToken)
        {
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                Cancelled = true;
            }

            return new ProcessResult(-1, string.Empty, string.Empty, false, "killed");
        }
    }

    private sealed class FakeReportWriter(List<BootReport> reports, List<BootReport> aside, string? notWritten, string? notAside) : IBootReportWriter
    {
        public string AsideDirectory => "/run/packet-agent";

        public string? Write(DirectoryHandle workspace, BootReport report)
        {
            reports.Add(report);
            return notWritten;
        }

        public string? WriteAside(BootReport report)
        {
            aside.Add(report);
            return notAside;
        }
    }
}
