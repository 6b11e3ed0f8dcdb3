using System.Collections;
using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Exec;
using Packet.Agent.Profile;

namespace Packet.Agent.Steps;

/// <summary>The result of preparing step 7: a plan to execve (and how the home was wired), or the shell's exit code for a command that cannot run.</summary>
public sealed record ExecDecision(ExecPlan? Plan, ExitCode FailureCode, string? Failure, HomeWiring? Home = null);

/// <summary>
/// Step 7, the part that can be decided before the agent lets go: find COMMAND on the PATH it
/// will have (<see cref="WorkspaceEnvironment"/>: <c>/workspace/bin</c> first) and build its environment. The execve itself is
/// done by <see cref="ProcessReplacer"/> once the logs are flushed.
/// </summary>
public sealed class ExecStep(CommandResolver resolver, Func<IDictionary> environment, Func<string, bool> exists, LiveHome liveHome)
{
    public const int Number = 7;

    public ExecDecision Prepare(BootContext context)
    {
        var command = context.Options.Command;
        var variables = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (DictionaryEntry variable in environment())
        {
            variables[(string)variable.Key] = (string?)variable.Value ?? string.Empty;
        }

        HomeWiring? home = null;
        if (context.PersistenceAvailable)
        {
            WorkspaceEnvironment.Apply(variables, WorkspaceEnvironment.For(context.Options.Workspace, exists));
            if ((context.HomeSeeded || context.SeedPlanned) && context.Options.LinkHome == LinkHomeMode.Auto)
            {
                home = liveHome.Wire(context.Options.Home, Path.Join(context.Options.Workspace, "home"), context.Options.DryRun);
                if (home.HomeForCommand is { } homeForCommand)
                {
                    variables["HOME"] = homeForCommand;
                }
            }
        }

        var found = resolver.Resolve(command[0], variables.GetValueOrDefault("PATH"));
        if (!found.Found)
        {
            var code = found.ExitCode == 126 ? ExitCode.CommandNotExecutable : ExitCode.CommandNotFound;
            return new ExecDecision(null, code, $"cannot run {command[0]}: {found.Failure}");
        }

        var plan = new ExecPlan(found.Path!, command, variables.Select(v => $"{v.Key}={v.Value}").ToArray());
        return new ExecDecision(plan, ExitCode.Success, null, home);
    }
}
