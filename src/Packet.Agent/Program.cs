using System.IO.Abstractions;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Mono.Unix.Native;
using Packet.Agent;
using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Copy;
using Packet.Agent.Exec;
using Packet.Agent.Gpu;
using Packet.Agent.Hooks;
using Packet.Agent.Json;
using Packet.Agent.Logging;
using Packet.Agent.Posix;
using Packet.Agent.Steps;

// The composition root: parse, build the real adapters, run the command, exit with its code.
NativeLibraries.LoadMonoPosixHelperFromAppDirectory();
ParsedCommand command;
try
{
    command = CommandLine.Parse(args, ProcessEnvironment.Instance, () => Syscall.getpwuid(Syscall.geteuid())?.pw_dir);
}
catch (UsageException e)
{
    Console.Error.WriteLine($"packet-agent: {e.Message}");
    return (int)ExitCode.Usage;
}

return command switch
{
    HelpCommand => PrintHelp(),
    VersionCommand => PrintVersion(),
    BootCommand boot => Agent.Boot(boot.Options),
    GpuCommand gpu => Agent.QueryGpus(gpu.Options),
    RunAsCommand runAs => UserSwitch.Run(runAs.Uid, runAs.Gid, runAs.Command, new CommandResolver(new FileSystem(), path => Syscall.access(path, AccessModes.X_OK) == 0)),
    _ => throw new InvalidOperationException($"unhandled command {command}"),
};

static int PrintHelp()
{
    Console.Out.Write(HelpText.Render());
    return (int)ExitCode.Success;
}

static int PrintVersion()
{
    Console.Out.WriteLine($"{AgentInfo.Name} {AgentInfo.Version}");
    return (int)ExitCode.Success;
}

/// <summary>The commands, wired to real adapters.</summary>
internal static partial class Agent
{
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromSeconds(5);

    public static int Boot(BootOptions options)
    {
        if (options.Command.Count > 0)
        {
            ProcessReplacer.CaptureInheritedDescriptors();
        }

        BootOutcome outcome;
        var fileSystem = new FileSystem();
        using (var logging = AgentLogging.Create(options.LogFormat))
        {
            var loggers = logging.Factory;
            var posix = PosixSystem.Instance;
            var resolver = new CommandResolver(fileSystem, IsExecutable);
            using var gpu = new GpuCheckStep(NvidiaSmi(resolver), loggers.CreateLogger("gpu"), options.Gpu);
            var steps = new BootSteps(
                new GuardStep(fileSystem),
                new SeedHomeStep(posix, loggers.CreateLogger("seed"), new CopyOptions { PreserveOwnership = posix.EffectiveUserId == 0 }, ProgressInterval),
                new MarkerStep(posix, TimeProvider.System),
                new ShellProfileStep(posix, fileSystem, loggers.CreateLogger("profile")),
                gpu,
                new HooksStep(posix, fileSystem, new HookRunner(posix, Environment.ProcessPath!), resolver, loggers.CreateLogger("hooks"), Environment.GetEnvironmentVariables),
                new ExecStep(resolver, Environment.GetEnvironmentVariables, path => fileSystem.Directory.Exists(path) || fileSystem.File.Exists(path), new LiveHome(posix, MountTable.IsMountPoint, ContainerDetection.IsContainer)));
            outcome = new BootSequence(steps, loggers).Run(new BootContext(options));
            if (outcome.FailureReason is { } reason)
            {
                bool configured = !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("PACKET_TERMINATION_LOG"));
                if (new TerminationMessage(fileSystem, options.TerminationLog, configured).Write(reason) is { } notWritten)
                {
                    Log.TerminationMessageFailed(loggers.CreateLogger("boot"), notWritten);
                }
            }
        }

        // The logger is flushed and gone: nothing is lost when the process image is replaced.
        if (outcome.Exec is not { } plan)
        {
            return (int)outcome.ExitCode;
        }

        var errno = ProcessReplacer.Exec(plan);
        using (var logging = AgentLogging.Create(options.LogFormat))
        {
            Log.ExecFailed(logging.Factory.CreateLogger("exec"), plan.Path, PosixException.Describe(errno));
        }

        return (int)(errno == Errno.ENOENT ? ExitCode.CommandNotFound : ExitCode.CommandNotExecutable);
    }

    public static int QueryGpus(GpuOptions options)
    {
        using var logging = AgentLogging.Create(options.LogFormat);
        var logger = logging.Factory.CreateLogger("gpu");
        var resolver = new CommandResolver(new FileSystem(), IsExecutable);
        var result = NvidiaSmi(resolver).QueryAsync(options.NvidiaSmi, options.GpuTimeout, CancellationToken.None).GetAwaiter().GetResult();
        if (options.Json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(new GpuReport(result.Gpus, result.Problem), AgentJson.Default.GpuReport));
        }
        else
        {
            foreach (var gpu in result.Gpus)
            {
                Console.Out.WriteLine($"GPU {gpu.Index}: {gpu.Name}, {gpu.MemoryUsedMib?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?"} of {gpu.MemoryTotalMib?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?"} MiB used, driver {gpu.DriverVersion}, {gpu.Uuid}");
            }
        }

        if (result.Problem is { } problem)
        {
            Log.GpuProblem(logger, problem);
            return (int)ExitCode.BootFailed;
        }

        return (int)ExitCode.Success;
    }

    private static NvidiaSmi NvidiaSmi(CommandResolver resolver) =>
        new(new ProcessRunner(), resolver, () => Environment.GetEnvironmentVariable("PATH"));

    private static bool IsExecutable(string path) => Syscall.access(path, AccessModes.X_OK) == 0;

    private static partial class Log
    {
        [LoggerMessage(EventId = 0, Level = LogLevel.Warning, Message = "{Reason}")]
        public static partial void TerminationMessageFailed(ILogger logger, string reason);

        [LoggerMessage(EventId = ExecStep.Number, Level = LogLevel.Error, Message = "execve {Path} failed: {Reason}")]
        public static partial void ExecFailed(ILogger logger, string path, string reason);

        [LoggerMessage(EventId = 5, Level = LogLevel.Error, Message = "{Problem}")]
        public static partial void GpuProblem(ILogger logger, string problem);
    }
}
