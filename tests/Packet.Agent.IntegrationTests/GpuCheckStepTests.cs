using Microsoft.Extensions.Logging.Abstractions;
using Mono.Unix.Native;
using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Exec;
using Packet.Agent.Gpu;
using Packet.Agent.Steps;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>
/// The GPU step against a program that answers as nvidia-smi does (its --query-gpu CSV, as
/// nvidia-smi --help-query-gpu documents it): no GPU can be had here, the process handling is real.
/// </summary>
public sealed class GpuCheckStepTests : IDisposable
{
    private const string TwoGpus = "printf '0, NVIDIA H100 80GB HBM3, GPU-1, 81559, 0, 550.54.15\\n1, NVIDIA H100 80GB HBM3, GPU-2, 81559, 17, 550.54.15\\n'";

    private readonly TempDirectory _dir = new("gpu-step");

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(GpuMode.Auto)]
    [InlineData(GpuMode.Off)]
    public void Gpu_dry_run_and_run_come_from_the_same_decision(GpuMode mode)
    {
        string smi = _dir["nvidia-smi"];
        HomeFixture.Write(_dir.Path, "nvidia-smi", "#!/bin/sh\n" + TwoGpus + "\n", mode: "755");
        var resolver = new CommandResolver(new System.IO.Abstractions.FileSystem(), path => Syscall.access(path, AccessModes.X_OK) == 0);
        var changes = new ChangeLog();
        using var step = new GpuCheckStep(new NvidiaSmi(new RecordingProcessRunner(changes, new ProcessRunner()), resolver, () => "/usr/bin:/bin"), NullLogger.Instance, mode);
        var options = new BootOptions { Workspace = _dir["ws"], Home = _dir["home"], NvidiaSmi = smi, Gpu = mode };

        var (dryRun, planned, run, gpus) = Steps.DryRunThenRun(step, () => default(NoValue), options, _dir.Path, step.Start, changes);

        Assert.Empty(planned);
        if (mode == GpuMode.Off)
        {
            Assert.Equal(StepResult.Skipped("--gpu off"), dryRun);
            Assert.Equal(dryRun, run);
            Assert.Empty(gpus);
            return;
        }

        Assert.Equal($"would ask {smi} for the GPUs", dryRun.Summary);
        Assert.Equal(StepResult.Ok("2 GPUs found"), run);
        Assert.Equal(["GPU-1", "GPU-2"], gpus.Select(g => g.Uuid));
    }
}
