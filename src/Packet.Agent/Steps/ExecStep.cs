using System.Collections;
using Packet.Agent.Boot;
using Packet.Agent.Exec;

namespace Packet.Agent.Steps;

/// <summary>The result of preparing step 7: a plan to execve, or the shell's exit code for a command that cannot run.</summary>
public sealed record ExecDecision(ExecPlan? Plan, ExitCode FailureCode, string? Failure);

/// <summary>
/// Step 7, the part that can be decided before the agent lets go: find COMMAND on the PATH it
/// will have (with <c>/workspace/bin</c> first) and build its environment. The execve itself is
/// done by <see cref="ProcessReplacer"/> once the logs are flushed.
/// </summary>
public sealed class ExecStep(CommandResolver resolver, Func<IDictionary> environment)
{
    public const int Number = 7;

    public const string DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    public ExecDecision Prepare(BootContext context)
    {
        var command = context.Options.Command;
        var variables = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (DictionaryEntry variable in environment())
        {
            variables[(string)variable.Key] = (string?)variable.Value ?? string.Empty;
        }

        if (context.PersistenceAvailable)
        {
            variables["PATH"] = PrependToPath(variables.GetValueOrDefault("PATH"), Path.Join(context.Options.Workspace, "bin"));
        }

        var found = resolver.Resolve(command[0], variables.GetValueOrDefault("PATH"));
        if (!found.Found)
        {
            var code = found.ExitCode == 126 ? ExitCode.CommandNotExecutable : ExitCode.CommandNotFound;
            return new ExecDecision(null, code, $"cannot run {command[0]}: {found.Failure}");
        }

        var plan = new ExecPlan(found.Path!, command, variables.Select(v => $"{v.Key}={v.Value}").ToArray());
        return new ExecDecision(plan, ExitCode.Success, null);
    }

    /// <summary>Puts <paramref name="directory"/> first on PATH, once (a second boot in the same shell must not stack it).</summary>
    public static string PrependToPath(string? path, string directory)
    {
        // Unset PATH: what a login shell would have, not an empty search.
        path = string.IsNullOrEmpty(path) ? DefaultPath : path;

        var rest = path.Split(':').Where(entry => entry != directory);
        return string.Join(':', new[] { directory }.Concat(rest));
    }
}
