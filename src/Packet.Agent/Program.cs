using System.IO.Abstractions;
using Mono.Unix.Native;
using Packet.Agent.Cli;
using Packet.Agent.Commands;
using Packet.Agent.Exec;
using Packet.Agent.Logging;
using Packet.Agent.Posix;
using Packet.Agent.Ssh;
using Packet.Agent;

// The composition root: parse, build the real adapters, run the command, exit with its code.
NativeLibraries.LoadMonoPosixHelperFromAppDirectory();
Console.SetError(StandardErrorStream.CreateWriter());
string runtime = Agent.RuntimeOf(Environment.GetEnvironmentVariable(OptionTable.RuntimeDirectory.Variable!));
var pod = PodEnvironment.Resolve(new FileSystem(), runtime, () => RuntimeDirectory.Refusal(PosixSystem.Instance, runtime), Environment.GetEnvironmentVariables());
var environment = pod.Variables;
ParsedCommand command;
try
{
    command = CommandLine.Parse(args, new VariablesEnvironment(environment), () => Syscall.getpwuid(Syscall.geteuid())?.pw_dir);
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
    BootCommand boot => Agent.Boot(boot.Options, pod),
    StatusCommand status => Agent.Status(status.Options),
    ResetHomeCommand reset => Agent.ResetHome(reset.Options, environment),
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
