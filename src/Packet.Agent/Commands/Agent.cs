using System.IO.Abstractions;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Mono.Unix.Native;
using Packet.Agent.Gpu;
using Packet.Agent.Home;
using Packet.Agent.Hooks;
using Packet.Agent.Sequence;
using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Copy;
using Packet.Agent.Exec;
using Packet.Agent.Logging;
using Packet.Agent.Operations;
using Packet.Agent.Posix;
using Packet.Agent.Ssh;
using Packet.Agent.Steps;

namespace Packet.Agent.Commands;

/// <summary>The commands, wired to real adapters.</summary>
internal static partial class Agent
{
    /// <summary>The container's own runtime directory (sshd's config and pid, the pod's recorded environment, a report the volume could not take): PACKET_RUNTIME_DIR, else the agent's user's default.</summary>
    public static string RuntimeOf(string? configured) => configured is { Length: > 0 } ? configured : BootReportAside.DefaultDirectory(Syscall.geteuid());

    private static readonly TimeSpan ProgressInterval = TimeSpan.FromSeconds(5);

    public static int Boot(BootOptions options, PodEnvironmentChoice pod)
    {
        var environment = pod.Variables;
        if (options.Command.Count > 0)
        {
            ProcessReplacer.CaptureInheritedDescriptors();
        }

        BootOutcome outcome;
        var fileSystem = new FileSystem();
        using var stop = new StopRequest();
        using (StopSignals.Install(stop))
        using (var logging = AgentLogging.Create(options.LogFormat))
        {
            var loggers = logging.Factory;
            LogPodEnvironment(loggers.CreateLogger(StepId.Boot.Name), pod);
            var posix = PosixSystem.Instance;
            var resolver = new CommandResolver(fileSystem, IsExecutable);
            var trust = new ProgramTrust(posix);
            using var gpu = new GpuCheckStep(NvidiaSmi(resolver, trust.ForImageProgram(options.Workspace)), loggers.CreateLogger(StepId.Gpu.Name), options.Gpu);
            var hooks = new HooksStep(posix, new HookRunner(posix, Environment.ProcessPath!, TimeProvider.System), resolver, trust, loggers.CreateLogger(StepId.Hooks.Name), () => environment);
            string runtime = RuntimeOf(options.RuntimeDirectory);
            var ssh = new SshStep(posix, new FileSystem(), new ProcessRunner(), resolver, trust, () => environment, new SshPaths(runtime, "/run/sshd"), ContainerDetection.IsContainer, SystemAccounts.Instance, SystemAccounts.StrictModes(), loggers.CreateLogger(StepId.Ssh.Name), TimeProvider.System);
            var steps = Steps(loggers, resolver, trust, gpu, hooks, ssh, environment);
            outcome = new BootSequence(steps, loggers, new BootReportWriter(posix, runtime), TimeProvider.System).Run(options, stop, HomeAccount.Resolve(posix, SystemAccounts.Instance, options));
            if (options.DryRun)
            {
                PrintPlan(outcome);
                return (int)outcome.ExitCode;
            }

            if (outcome.FailureReason is { } reason)
            {
                if (new TerminationMessage(fileSystem, options.TerminationLog, options.TerminationLogConfigured).Write(reason) is { } notWritten)
                {
                    Log.TerminationMessageFailed(loggers.CreateLogger(StepId.Boot.Name), notWritten);
                }
            }
        }

        // The logger is flushed and gone, the signal handlers too: nothing is lost when the process
        // image is replaced, and COMMAND gets the default dispositions.
        if (outcome.Exec is not { } plan)
        {
            return (int)outcome.ExitCode;
        }

        var errno = ProcessReplacer.Exec(plan);
        using (var logging = AgentLogging.Create(options.LogFormat))
        {
            Log.ExecFailed(logging.Factory.CreateLogger(StepId.Exec.Name), plan.Path, PosixException.Describe(errno));
        }

        return (int)(errno == Errno.ENOENT ? ExitCode.CommandNotFound : ExitCode.CommandNotExecutable);
    }

    /// <summary>Where the environment came from, when it is not the agent's own: the pod's record, read or refused.</summary>
    private static void LogPodEnvironment(ILogger logger, PodEnvironmentChoice pod)
    {
        if (pod.RecordedBy is { } podRecord)
        {
            Log.InPodSession(logger, podRecord);
        }

        if (pod.NotUsed is { } notUsed)
        {
            Log.PodRecordNotUsed(logger, notUsed);
        }
    }

    /// <summary>The dry run's plan on standard output: one line per step, then each change it would make, the command last.</summary>
    private static void PrintPlan(BootOutcome outcome)
    {
        foreach (var step in outcome.Steps)
        {
            Console.Out.WriteLine($"{step.Name}: {step.Summary}");
            foreach (var change in step.Changes)
            {
                Console.Out.WriteLine($"  - {change.Describe()}");
            }
        }
    }

    public static int QueryGpus(GpuOptions options)
    {
        using var logging = AgentLogging.Create(options.LogFormat);
        var logger = logging.Factory.CreateLogger(StepId.Gpu.Name);
        var resolver = new CommandResolver(new FileSystem(), IsExecutable);
        // gpu takes no --workspace: the volume a boot would use is passed over all the same.
        string workspace = Environment.GetEnvironmentVariable(OptionTable.Workspace.Variable!) ?? OptionTable.Workspace.Default!;
        var result = NvidiaSmi(resolver, new ProgramTrust(PosixSystem.Instance).ForImageProgram(workspace)).QueryAsync(options.NvidiaSmi, options.GpuTimeout, CancellationToken.None).GetAwaiter().GetResult();
        if (options.Json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(new GpuReport(result.Gpus, result.Problem), GpuJson.Default.GpuReport));
        }
        else
        {
            foreach (var gpu in result.Gpus)
            {
                Console.Out.WriteLine($"GPU {gpu.Index}: {gpu.Name}, {gpu.MemoryUsedMib?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?"} of {gpu.MemoryTotalMib?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?"} MiB used, driver {gpu.DriverVersion}, {gpu.Uuid}");
            }
        }

        if (result.PassedOver is { } passedOver)
        {
            Log.GpuPassedOver(logger, passedOver);
        }

        if (result.Problem is { } problem)
        {
            Log.GpuProblem(logger, problem);
            return (int)ExitCode.BootFailed;
        }

        return (int)ExitCode.Success;
    }

    /// <summary>The boot's steps, built on the real adapters; reset-home passes its own hooks and SSH steps.</summary>
    private static BootSteps Steps(ILoggerFactory loggers, CommandResolver resolver, ProgramTrust trust, IGpuStep gpu, IBootStep<HomeState?, NoValue> hooks, IBootStep<HomeState?, NoValue> ssh, System.Collections.IDictionary environment)
    {
        var posix = PosixSystem.Instance;
        return new BootSteps(
            new GuardStep(posix, TimeProvider.System),
            new SeedHomeStep(posix, loggers.CreateLogger(StepId.Seed.Name), new CopyOptions { PreserveOwnership = posix.EffectiveUserId == 0 }, ProgressInterval, TimeProvider.System),
            new MarkerStep(posix, TimeProvider.System),
            new ShellProfileStep(posix, loggers.CreateLogger(StepId.Profile.Name)),
            gpu,
            hooks,
            ssh,
            new ExecStep(resolver, trust, () => environment, new LiveHome(posix, MountTable.IsMountPoint, ContainerDetection.IsContainer, TimeProvider.System)));
    }

    public static int Status(StatusOptions options)
    {
        var fileSystem = new FileSystem();
        string workspace = fileSystem.Directory.Exists(options.Workspace)
            ? fileSystem.Directory.ResolveLinkTarget(options.Workspace, returnFinalTarget: true)?.FullName ?? options.Workspace
            : options.Workspace;
        var aside = new BootReportAside(PosixSystem.Instance).Newest(RuntimeOf(options.RuntimeDirectory), [options.Workspace, workspace]);
        var report = new WorkspaceStatus(PosixSystem.Instance, MountTable.Describe).Gather(workspace, options.Home, aside);
        Console.Out.Write(options.Json
            ? JsonSerializer.Serialize(report, StatusJson.Default.StatusReport) + "\n"
            : WorkspaceStatus.Render(report));
        return (int)(report.Attention.Count == 0 ? ExitCode.Success : ExitCode.BootFailed);
    }

    public static int ResetHome(ResetHomeOptions options, System.Collections.IDictionary environment)
    {
        var boot = options.Boot;
        using var logging = AgentLogging.Create(boot.LogFormat);
        var logger = logging.Factory.CreateLogger("reset-home");
        if (!Directory.Exists(boot.Workspace))
        {
            Log.ResetFailed(logger, $"{boot.Workspace} does not exist: there is no home to reset");
            return (int)ExitCode.BootFailed;
        }

        ResetOutcome moved;
        try
        {
            moved = new HomeReset(PosixSystem.Instance, TimeProvider.System).MoveAside(boot.Workspace, boot.Home, boot.DryRun);
        }
        catch (IOException e)
        {
            Log.ResetFailed(logger, e.Message);
            return (int)ExitCode.BootFailed;
        }

        Console.Out.WriteLine(moved.Message);
        if (!moved.Done)
        {
            Log.ResetFailed(logger, moved.Message);
            return (int)ExitCode.BootFailed;
        }

        if (boot.DryRun)
        {
            return (int)ExitCode.Success;
        }

        if (options.AtNextBoot)
        {
            Console.Out.WriteLine("the next boot seeds a fresh home");
            return (int)ExitCode.Success;
        }

        // Seed now: the boot's own persistence steps (no GPU check, no hooks, no command).
        var fileSystem = new FileSystem();
        var resolver = new CommandResolver(fileSystem, IsExecutable);
        using var gpu = new GpuCheckStep(NvidiaSmi(resolver, null), logging.Factory.CreateLogger(StepId.Gpu.Name), GpuMode.Off);
        var steps = Steps(logging.Factory, resolver, new ProgramTrust(PosixSystem.Instance), gpu, new NotRunStep<HomeState?>(StepId.Hooks, "not part of reset-home; they run at the next boot"), new NotRunStep<HomeState?>(StepId.Ssh, "not part of reset-home; sshd is set up at the next boot"), environment);
        using var stop = new StopRequest();
        using var signals = StopSignals.Install(stop);
        var outcome = new BootSequence(steps, logging.Factory, new BootReportWriter(PosixSystem.Instance, RuntimeOf(boot.RuntimeDirectory)), TimeProvider.System).Run(boot, stop, HomeAccount.Resolve(PosixSystem.Instance, SystemAccounts.Instance, boot));
        return (int)outcome.ExitCode;
    }

    private static NvidiaSmi NvidiaSmi(CommandResolver resolver, Func<string, string?>? distrust) =>
        new(new ProcessRunner(), resolver, () => Environment.GetEnvironmentVariable("PATH"), distrust);

    private static bool IsExecutable(string path) => Syscall.access(path, AccessModes.X_OK) == 0;

    private static partial class Log
    {
        [LoggerMessage(EventId = StepNumber.Boot, Level = LogLevel.Warning, Message = "{Reason}")]
        public static partial void TerminationMessageFailed(ILogger logger, string reason);

        [LoggerMessage(EventId = StepNumber.Exec, Level = LogLevel.Error, Message = "execve {Path} failed: {Reason}")]
        public static partial void ExecFailed(ILogger logger, string path, string reason);

        [LoggerMessage(EventId = StepNumber.Gpu, Level = LogLevel.Error, Message = "{Problem}")]
        public static partial void GpuProblem(ILogger logger, string problem);

        [LoggerMessage(EventId = StepNumber.Gpu, Level = LogLevel.Warning, Message = "{PassedOver}")]
        public static partial void GpuPassedOver(ILogger logger, string passedOver);

        [LoggerMessage(EventId = StepNumber.Boot, Level = LogLevel.Error, Message = "{Reason}")]
        public static partial void ResetFailed(ILogger logger, string reason);

        [LoggerMessage(EventId = StepNumber.Boot, Level = LogLevel.Warning, Message = "{NotUsed}")]
        public static partial void PodRecordNotUsed(ILogger logger, string notUsed);

        [LoggerMessage(EventId = StepNumber.Boot, Level = LogLevel.Information, Message = "running inside one of the pod's SSH sessions: the settings and variables are the pod's, from {Record}; PACKET_* set in the session still win")]
        public static partial void InPodSession(ILogger logger, string record);
    }
}
