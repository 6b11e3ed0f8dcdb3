using Microsoft.Extensions.Logging;
using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Gpu;

namespace Packet.Agent.Steps;

/// <summary>Step 5's shape: a step that starts at the beginning of the boot and is collected in its turn.</summary>
public interface IGpuStep : IBootStep<NoValue, IReadOnlyList<GpuInfo>>, IDisposable
{
    /// <summary>Starts the query, unless the GPU check is off or this is a dry run (which starts nothing).</summary>
    void Start(BootSettings settings);
}

/// <summary>
/// Step 5: nvidia-smi's view of the GPUs, one log line each. Started when the boot starts and
/// collected here, so a slow nvidia-smi (seconds, with persistence mode off) overlaps the copy; a
/// stop signal kills it. <c>auto</c>: a problem is a warning; <c>require</c>: it fails the boot;
/// <c>off</c>: skipped.
/// </summary>
public sealed partial class GpuCheckStep(NvidiaSmi nvidiaSmi, ILogger logger, GpuMode mode) : IGpuStep
{
    private readonly CancellationTokenSource _abandon = new();
    private CancellationTokenRegistration _onStop;
    private Task<GpuQueryResult>? _query;

    public StepId Id => StepId.Gpu;

    public FailurePolicy Policy => mode == GpuMode.Require ? FailurePolicy.FailBoot : FailurePolicy.WarnAndContinue;

    public void Start(BootSettings settings)
    {
        if (mode != GpuMode.Off && !settings.Options.DryRun)
        {
            _onStop = settings.Stop.Token.Register(_abandon.Cancel);
            _query = nvidiaSmi.QueryAsync(settings.Options.NvidiaSmi, settings.Options.GpuTimeout, _abandon.Token);
        }
    }

    public StepPlan<IReadOnlyList<GpuInfo>> Decide(NoValue input, BootSettings settings)
    {
        if (mode == GpuMode.Off)
        {
            return StepPlan.Settled<IReadOnlyList<GpuInfo>>(StepResult.Skipped("--gpu off"), []);
        }

        return new QueryPlan(settings.Options);
    }

    /// <summary>Collects the query started with the boot: the plan holds nothing more than what it ran.</summary>
    public (StepResult Result, IReadOnlyList<GpuInfo> Value) Apply(StepPlan<IReadOnlyList<GpuInfo>> plan, BootSettings settings)
    {
        var result = _query!.GetAwaiter().GetResult();
        foreach (var gpu in result.Gpus)
        {
            Log.Gpu(logger, gpu.Index, gpu.Name, Memory(gpu.MemoryUsedMib), Memory(gpu.MemoryTotalMib), gpu.DriverVersion, gpu.Uuid);
        }

        string passed = result.PassedOver is { } note ? $" ({note})" : string.Empty;
        if (!result.Healthy)
        {
            return (StepResult.Problem(result.Problem! + passed), result.Gpus);
        }

        string found = $"{result.Gpus.Count} GPU{(result.Gpus.Count == 1 ? string.Empty : "s")} found{passed}";
        if (result.PassedOver is not { } passedOver)
        {
            return (StepResult.Ok(found), result.Gpus);
        }

        // A planted nvidia-smi is a warning like any program passed over, but under --gpu require it must not
        // stop a pod whose GPUs the image's own nvidia-smi found: there it is a warning line of its own.
        if (mode != GpuMode.Require)
        {
            return (StepResult.Problem(found), result.Gpus);
        }

        Log.PassedOver(logger, passedOver);
        return (StepResult.Ok(found), result.Gpus);
    }

    /// <summary>Kills nvidia-smi if the boot ends before collecting it, so no orphan is left behind.</summary>
    public void Dispose()
    {
        if (_query is { IsCompleted: false } query)
        {
            _abandon.Cancel();
            query.Wait(TimeSpan.FromSeconds(5));
        }

        _onStop.Dispose();
        _abandon.Dispose();
    }

    /// <summary>nvidia-smi, started when the boot started and collected in this step's turn.</summary>
    private sealed class QueryPlan(BootOptions options) : StepPlan<IReadOnlyList<GpuInfo>>(
        StepResult.Ok($"would ask {options.NvidiaSmi} for the GPUs"),
        [],
        [PlannedChange.Run(options.NvidiaSmi, $"--query-gpu at the start of the boot, killed after {Units.Duration(options.GpuTimeout)}")]);

    private static string Memory(long? mebibytes) => mebibytes is { } value ? $"{value} MiB" : "unknown";

    private static partial class Log
    {
        [LoggerMessage(EventId = StepNumber.Gpu, Level = LogLevel.Warning, Message = "{PassedOver}")]
        public static partial void PassedOver(ILogger logger, string passedOver);

        [LoggerMessage(EventId = StepNumber.Gpu, Level = LogLevel.Information, Message = "GPU {Index}: {Name}, {Used} of {Total} used, driver {Driver}, {Uuid}")]
        public static partial void Gpu(ILogger logger, int index, string name, string used, string total, string driver, string uuid);
    }
}
