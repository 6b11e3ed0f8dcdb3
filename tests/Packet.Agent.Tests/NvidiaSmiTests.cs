using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Exec;
using Packet.Agent.Gpu;
using Packet.Agent.Steps;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.Tests;

public sealed class NvidiaSmiTests
{
    private const string TwoGpus = "0, NVIDIA H100 80GB HBM3, GPU-aaaa, 81559, 1, 550.54.15\n1, NVIDIA H100 80GB HBM3, GPU-bbbb, 81559, 2048, 550.54.15\n";

    private static (NvidiaSmi Smi, FakeProcessRunner Runner) With(ProcessResult result, bool installed = true)
    {
        var fileSystem = installed ? FakeFileSystem.With("/usr/bin/nvidia-smi") : FakeFileSystem.With();
        var runner = new FakeProcessRunner(result);
        return (new NvidiaSmi(runner, FakeFileSystem.Resolver(fileSystem, "/usr/bin/nvidia-smi"), () => "/usr/bin"), runner);
    }

    private static GpuQueryResult Query(ProcessResult result, bool installed = true) =>
        With(result, installed).Smi.QueryAsync("nvidia-smi", TimeSpan.FromSeconds(15), CancellationToken.None).GetAwaiter().GetResult();

    [Fact]
    public async Task It_asks_for_the_query_in_machine_readable_csv_with_the_timeout()
    {
        var (smi, runner) = With(new ProcessResult(0, TwoGpus, string.Empty, false));

        await smi.QueryAsync("nvidia-smi", TimeSpan.FromSeconds(7), CancellationToken.None);

        var call = Assert.Single(runner.Calls);
        Assert.Equal("/usr/bin/nvidia-smi", call.File);
        Assert.Equal(["--query-gpu=index,name,uuid,memory.total,memory.used,driver_version", "--format=csv,noheader,nounits"], call.Arguments);
        Assert.Equal(TimeSpan.FromSeconds(7), call.Timeout);
    }

    [Fact]
    public void Two_healthy_GPUs_are_read_field_by_field()
    {
        var result = Query(new ProcessResult(0, TwoGpus, string.Empty, false));

        Assert.True(result.Healthy);
        Assert.Equal(
            [new GpuInfo(0, "NVIDIA H100 80GB HBM3", "GPU-aaaa", 81559, 1, "550.54.15"), new GpuInfo(1, "NVIDIA H100 80GB HBM3", "GPU-bbbb", 81559, 2048, "550.54.15")],
            result.Gpus);
    }

    [Fact]
    public void Unavailable_memory_figures_are_unknown_not_errors()
    {
        var gpu = Assert.Single(NvidiaSmi.Parse("0, Tesla T4, GPU-cccc, [N/A], [N/A], 535.1\n").Gpus);

        Assert.Null(gpu.MemoryTotalMib);
        Assert.Null(gpu.MemoryUsedMib);
    }

    [Fact]
    public void A_comma_in_the_name_does_not_shift_the_other_fields()
    {
        var gpu = Assert.Single(NvidiaSmi.Parse("3, Odd, Name, GPU-dddd, 100, 5, 1.0\n").Gpus);

        Assert.Equal("Odd, Name", gpu.Name);
        Assert.Equal("GPU-dddd", gpu.Uuid);
    }

    [Fact]
    public void The_drivers_own_message_is_quoted_when_nvidia_smi_fails()
    {
        const string Message = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.";

        var result = Query(new ProcessResult(9, Message + "\n", string.Empty, false));

        Assert.Contains("failed with exit code 9", result.Problem);
        Assert.Contains(Message, result.Problem);
    }

    [Fact]
    public void A_hang_is_reported_as_killed_at_the_timeout() =>
        Assert.Contains("did not answer within 15 s and was killed", Query(new ProcessResult(-1, string.Empty, string.Empty, TimedOut: true)).Problem);

    [Fact]
    public void Zero_GPUs_is_a_problem() =>
        Assert.Equal("nvidia-smi reported no GPUs", Query(new ProcessResult(0, "\n", string.Empty, false)).Problem);

    [Fact]
    public void Garbage_output_is_a_problem_that_quotes_it()
    {
        var result = Query(new ProcessResult(0, "Segmentation fault (core dumped)\n", string.Empty, false));

        Assert.Contains("not a GPU record: 'Segmentation fault (core dumped)'", result.Problem);
    }

    [Fact]
    public void A_missing_nvidia_smi_is_a_problem_that_says_where_it_looked() =>
        Assert.Contains("nvidia-smi is not available (nvidia-smi: not found in PATH (/usr/bin))", Query(new ProcessResult(0, TwoGpus, string.Empty, false), installed: false).Problem);

    [Fact]
    public void A_program_that_cannot_be_started_is_named_with_the_reason() =>
        Assert.Equal("could not start /usr/bin/nvidia-smi: Permission denied", Query(new ProcessResult(-1, string.Empty, string.Empty, false, "Permission denied")).Problem);

    [Fact]
    public void A_failure_without_output_says_so() =>
        Assert.Equal("/usr/bin/nvidia-smi failed with exit code 4: no message", Query(new ProcessResult(4, " \n", "\n", false)).Problem);

    [Fact]
    public void A_failure_quotes_its_first_three_lines_from_both_streams_shortened_to_300_characters()
    {
        string longLine = new('x', 400);

        var threeLines = Query(new ProcessResult(2, "one\n\ntwo\n", "three\nfour\n", false)).Problem;
        var oneLongLine = Query(new ProcessResult(2, longLine, string.Empty, false)).Problem;

        Assert.Equal("/usr/bin/nvidia-smi failed with exit code 2: one two three", threeLines);
        Assert.Equal("/usr/bin/nvidia-smi failed with exit code 2: " + longLine[..300] + "...", oneLongLine);
    }

    [Theory]
    [InlineData("0, NVIDIA H100, GPU-aaaa, 81559, 550.54.15")]
    [InlineData("-1, NVIDIA H100, GPU-aaaa, 81559, 1, 550.54.15")]
    [InlineData("first, NVIDIA H100, GPU-aaaa, 81559, 1, 550.54.15")]
    public void A_line_with_too_few_fields_or_no_index_is_not_a_GPU_record(string line)
    {
        var result = NvidiaSmi.Parse(TwoGpus + line + "\n");

        Assert.Equal($"nvidia-smi printed a line that is not a GPU record: '{line}'", result.Problem);
        Assert.Equal(2, result.Gpus.Count);
    }

    [Fact]
    public void Blank_lines_and_padding_are_passed_over_and_a_negative_memory_figure_is_unknown()
    {
        var result = NvidiaSmi.Parse("\n  0, Tesla T4, GPU-cccc, 15360, -5, 535.1  \n\n");

        Assert.True(result.Healthy);
        Assert.Equal(new GpuInfo(0, "Tesla T4", "GPU-cccc", 15360, null, "535.1"), Assert.Single(result.Gpus));
    }

    [Fact]
    public void A_record_of_exactly_300_characters_is_quoted_whole()
    {
        string line = "garbage " + new string('y', 292);

        Assert.Equal($"nvidia-smi printed a line that is not a GPU record: '{line}'", NvidiaSmi.Parse(line).Problem);
    }

    [Fact]
    public void A_record_longer_than_300_characters_is_quoted_shortened()
    {
        string line = "garbage " + new string('y', 400);

        Assert.Equal($"nvidia-smi printed a line that is not a GPU record: '{line[..300]}...'", NvidiaSmi.Parse(line).Problem);
    }
}

public sealed class GpuCheckStepUnitTests
{
    private const string OneGpu = "0, NVIDIA H100 80GB HBM3, GPU-aaaa, 81559, 1, 550.54.15\n";

    private static (GpuCheckStep Step, FakeProcessRunner Runner, ListLoggerProvider Logs) Step(GpuMode mode, ProcessResult result)
    {
        var runner = new FakeProcessRunner(result);
        var logs = new ListLoggerProvider();
        var smi = new NvidiaSmi(runner, FakeFileSystem.Resolver(FakeFileSystem.With("/usr/bin/nvidia-smi"), "/usr/bin/nvidia-smi"), () => "/usr/bin");
        return (new GpuCheckStep(smi, logs.CreateLogger("gpu"), mode), runner, logs);
    }

    private static BootSettings Settings(bool dryRun = false) =>
        new(new BootOptions { Workspace = "/workspace", Home = "/root", DryRun = dryRun }, new StopRequest(), TestAccounts.Root);

    [Fact]
    public void One_gpu_is_found_and_logged_with_its_memory()
    {
        var (step, _, logs) = Step(GpuMode.Auto, new ProcessResult(0, OneGpu, string.Empty, false));
        using (step)
        {
            var settings = Settings();
            step.Start(settings);
            using var plan = step.Decide(default, settings);

            var (result, gpus) = step.Apply(plan, settings);

            Assert.Equal(StepResult.Ok("1 GPU found"), result);
            Assert.Single(gpus);
            Assert.Contains(logs.Lines, line => line.Contains("NVIDIA H100 80GB HBM3", StringComparison.Ordinal) && line.Contains("1 MiB", StringComparison.Ordinal) && line.Contains("81559 MiB", StringComparison.Ordinal));
        }
    }

    [Theory]
    [InlineData(GpuMode.Off, false)]
    [InlineData(GpuMode.Auto, true)]
    public void Nothing_is_started_when_the_check_is_off_or_in_a_dry_run(GpuMode mode, bool dryRun)
    {
        var (step, runner, _) = Step(mode, new ProcessResult(0, OneGpu, string.Empty, false));
        using (step)
        {
            step.Start(Settings(dryRun));
        }

        Assert.Empty(runner.Calls);
    }

    [Theory]
    [InlineData(GpuMode.Auto, FailurePolicy.WarnAndContinue)]
    [InlineData(GpuMode.Require, FailurePolicy.FailBoot)]
    [InlineData(GpuMode.Off, FailurePolicy.WarnAndContinue)]
    public void Only_require_makes_a_gpu_problem_fail_the_boot(GpuMode mode, FailurePolicy policy)
    {
        var (step, _, _) = Step(mode, new ProcessResult(0, OneGpu, string.Empty, false));
        using (step)
        {
            Assert.Equal(policy, step.Policy);
        }
    }

    [Theory]
    [InlineData(GpuMode.Auto, StepOutcome.Warning, false)]
    [InlineData(GpuMode.Require, StepOutcome.Ok, true)]
    public void A_planted_nvidia_smi_passed_over_is_a_warning_but_never_fails_a_boot_whose_gpus_the_images_found(GpuMode mode, StepOutcome outcome, bool ownLine)
    {
        var runner = new FakeProcessRunner(new ProcessResult(0, OneGpu, string.Empty, false));
        var logs = new ListLoggerProvider();
        var resolver = FakeFileSystem.Resolver(FakeFileSystem.With("/workspace/bin/nvidia-smi", "/usr/bin/nvidia-smi"), "/workspace/bin/nvidia-smi", "/usr/bin/nvidia-smi");
        var smi = new NvidiaSmi(runner, resolver, () => "/workspace/bin:/usr/bin", path => path.StartsWith("/workspace/", StringComparison.Ordinal) ? "it is on the volume" : null);
        using var step = new GpuCheckStep(smi, logs.CreateLogger("gpu"), mode);
        var settings = Settings();
        step.Start(settings);
        using var plan = step.Decide(default, settings);

        var (result, gpus) = step.Apply(plan, settings);

        Assert.Equal("/usr/bin/nvidia-smi", Assert.Single(runner.Calls).File);
        Assert.Single(gpus);
        Assert.Equal(outcome, result.Outcome);
        Assert.Equal("1 GPU found (passed over /workspace/bin/nvidia-smi (it is on the volume): root runs no program another account could have changed)", result.Summary);
        Assert.Equal(ownLine, logs.Lines.Any(line => line.StartsWith("Warning: passed over /workspace/bin/nvidia-smi", StringComparison.Ordinal)));
    }

    [Fact]
    public void An_unhealthy_answer_is_a_problem_with_nvidia_smis_reason()
    {
        var (step, _, _) = Step(GpuMode.Require, new ProcessResult(9, string.Empty, "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.", false));
        using (step)
        {
            var settings = Settings();
            step.Start(settings);
            using var plan = step.Decide(default, settings);

            var (result, gpus) = step.Apply(plan, settings);

            Assert.Equal(StepOutcome.Warning, result.Outcome);
            Assert.Contains("couldn't communicate with the NVIDIA driver", result.Summary, StringComparison.Ordinal);
            Assert.Empty(gpus);
        }
    }
}
