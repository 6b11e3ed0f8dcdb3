using Microsoft.Extensions.Logging;
using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Gpu;

namespace Packet.Agent.Steps;

/// <summary>
/// Step 5: nvidia-smi's view of the GPUs, one log line each. Started when the boot starts and
/// collected here, so a slow nvidia-smi (seconds, with persistence mode off) overlaps the copy.
/// <c>auto</c>: a problem is a warning; <c>require</c>: it fails the boot; <c>off</c>: skipped.
/// </summary>
public sealed partial class GpuCheckStep(NvidiaSmi nvidiaSmi, ILogger logger, GpuMode mode) : IBootStep, IDisposable
{
    private readonly CancellationTokenSource _abandon = new();
    private CancellationTokenRegistration _onStop;
    private Task<GpuQueryResult>? _query;

    public string Name => "gpu";

    public int Number => 5;

    public FailurePolicy Policy => mode == GpuMode.Require ? FailurePolicy.FailBoot : FailurePolicy.WarnAndContinue;

    /// <summary>The GPUs found by this boot (empty until the step has run).</summary>
    public IReadOnlyList<GpuInfo> Gpus { get; private set; } = [];

    /// <summary>Starts nvidia-smi; a stop request kills it (and what it started) at once.</summary>
    public void Start(BootOptions options, CancellationToken stop)
    {
        if (mode != GpuMode.Off)
        {
            _onStop = stop.Register(_abandon.Cancel);
            _query = nvidiaSmi.QueryAsync(options.NvidiaSmi, options.GpuTimeout, _abandon.Token);
        }
    }

    public StepResult Run(BootContext context)
    {
        if (_query is null)
        {
            return StepResult.Skipped("--gpu off");
        }

        var result = _query.GetAwaiter().GetResult();
        Gpus = result.Gpus;
        foreach (var gpu in result.Gpus)
        {
            Log.Gpu(logger, gpu.Index, gpu.Name, Memory(gpu.MemoryUsedMib), Memory(gpu.MemoryTotalMib), gpu.DriverVersion, gpu.Uuid);
        }

        return result.Healthy
            ? StepResult.Ok($"{result.Gpus.Count} GPU{(result.Gpus.Count == 1 ? string.Empty : "s")} found")
            : StepResult.Problem(result.Problem!);
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

    private static string Memory(long? mebibytes) => mebibytes is { } value ? $"{value} MiB" : "unknown";

    private static partial class Log
    {
        [LoggerMessage(EventId = 5, Level = LogLevel.Information, Message = "GPU {Index}: {Name}, {Used} of {Total} used, driver {Driver}, {Uuid}")]
        public static partial void Gpu(ILogger logger, int index, string name, string used, string total, string driver, string uuid);
    }
}
