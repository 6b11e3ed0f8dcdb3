using System.Text.Json;
using Xunit;

namespace Packet.Agent.EndToEndTests;

/// <summary>The GPU check against fake nvidia-smi programs: healthy, failing, hanging, absent, empty.</summary>
public sealed class GpuTests : IDisposable
{
    private const string Healthy = "printf '0, NVIDIA H100 80GB HBM3, GPU-11111111, 81559, 0, 550.54.15\\n1, NVIDIA H100 80GB HBM3, GPU-22222222, 81559, 17, 550.54.15\\n'";
    private const string DriverMessage = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.";

    private readonly Scratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    [Fact]
    public void Gpu_json_lists_each_GPU_with_its_fields()
    {
        string smi = _scratch.Script("bin/nvidia-smi", Healthy);

        var result = Agent.Run(["gpu", "--json", "--nvidia-smi", smi]);

        Assert.Equal(0, result.ExitCode);
        using var report = JsonDocument.Parse(result.StandardOutput);
        var gpus = report.RootElement.GetProperty("gpus");
        Assert.Equal(2, gpus.GetArrayLength());
        Assert.Equal(1, gpus[1].GetProperty("index").GetInt32());
        Assert.Equal("NVIDIA H100 80GB HBM3", gpus[1].GetProperty("name").GetString());
        Assert.Equal("GPU-22222222", gpus[1].GetProperty("uuid").GetString());
        Assert.Equal(81559, gpus[1].GetProperty("memory_total_mib").GetInt64());
        Assert.Equal(17, gpus[1].GetProperty("memory_used_mib").GetInt64());
        Assert.Equal("550.54.15", gpus[1].GetProperty("driver_version").GetString());
    }

    [Fact]
    public void Nvidia_smi_is_found_on_PATH_by_default()
    {
        _scratch.Script("bin/nvidia-smi", Healthy);

        var result = Agent.Run(["gpu"], new Dictionary<string, string?> { ["PATH"] = _scratch["bin"] + ":/usr/bin:/bin" });

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("GPU 0: NVIDIA H100 80GB HBM3, 0 of 81559 MiB used, driver 550.54.15, GPU-11111111", result.StandardOutput);
    }

    [Fact]
    public void A_healthy_boot_logs_one_line_per_GPU()
    {
        string smi = _scratch.Script("bin/nvidia-smi", Healthy);

        var result = _scratch.Boot(["--gpu", "require", "--nvidia-smi", smi]);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(2, result.ErrorLines.Count(line => line.Contains("info: gpu[5] GPU ", StringComparison.Ordinal)));
        Assert.Contains(result.ErrorLines, line => line.Contains("info: gpu[5] 2 GPUs found", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("auto", 0)]
    [InlineData("require", 1)]
    public void A_failing_nvidia_smi_is_quoted_and_warns_or_fails_by_mode(string mode, int exitCode)
    {
        string smi = _scratch.Script("bin/nvidia-smi", $"echo \"{DriverMessage}\"; exit 9");

        var result = _scratch.Boot(["--gpu", mode, "--nvidia-smi", smi], ["sh", "-c", "echo ran"]);

        Assert.Equal(exitCode, result.ExitCode);
        Assert.Contains(result.ErrorLines, line => line.Contains("gpu[5]", StringComparison.Ordinal) && line.Contains("exit code 9: " + DriverMessage, StringComparison.Ordinal));
        Assert.Equal(exitCode == 0 ? "ran\n" : string.Empty, result.StandardOutput);
    }

    [Fact]
    public void A_hanging_nvidia_smi_is_killed_at_the_timeout_with_its_children()
    {
        string pidFile = _scratch["sleeper.pid"];
        string smi = _scratch.Script("bin/nvidia-smi", $"sleep 300 & echo $! > {pidFile}; wait");
        var started = System.Diagnostics.Stopwatch.StartNew();

        var result = _scratch.Boot(["--gpu", "require", "--nvidia-smi", smi, "--gpu-timeout", "1"]);

        Assert.Equal(1, result.ExitCode);
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(20), $"took {started.Elapsed}");
        Assert.Contains(result.ErrorLines, line => line.Contains("did not answer within 1 s and was killed", StringComparison.Ordinal));
        int sleeper = int.Parse(File.ReadAllText(pidFile).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.False(Directory.Exists($"/proc/{sleeper}") && !File.ReadAllText($"/proc/{sleeper}/stat").Contains(") Z ", StringComparison.Ordinal), "nvidia-smi's child was left running");
    }

    [Theory]
    [InlineData("auto", 0)]
    [InlineData("require", 1)]
    public void An_absent_nvidia_smi_warns_or_fails_by_mode(string mode, int exitCode)
    {
        var result = _scratch.Boot(["--gpu", mode, "--nvidia-smi", _scratch["bin/no-nvidia-smi"]]);

        Assert.Equal(exitCode, result.ExitCode);
        Assert.Contains(result.ErrorLines, line => line.Contains("nvidia-smi is not available", StringComparison.Ordinal));
    }

    [Fact]
    public void Zero_GPUs_fail_a_boot_that_requires_one()
    {
        string smi = _scratch.Script("bin/nvidia-smi", "exit 0");

        var result = _scratch.Boot(["--gpu", "require", "--nvidia-smi", smi]);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains(result.ErrorLines, line => line.Contains("nvidia-smi reported no GPUs", StringComparison.Ordinal));
    }

    [Fact]
    public void Gpu_json_reports_the_problem_and_exits_1()
    {
        string smi = _scratch.Script("bin/nvidia-smi", $"echo \"{DriverMessage}\" >&2; exit 9");

        var result = Agent.Run(["gpu", "--json", "--nvidia-smi", smi]);

        Assert.Equal(1, result.ExitCode);
        using var report = JsonDocument.Parse(result.StandardOutput);
        Assert.Equal(0, report.RootElement.GetProperty("gpus").GetArrayLength());
        Assert.Contains(DriverMessage, report.RootElement.GetProperty("error").GetString());
    }
}
