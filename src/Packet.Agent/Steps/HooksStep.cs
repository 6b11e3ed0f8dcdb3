using System.Collections;
using Microsoft.Extensions.Logging;
using Mono.Unix.Native;
using Packet.Agent.Boot;
using Packet.Agent.Exec;
using Packet.Agent.Hooks;
using Packet.Agent.Posix;
using Packet.Agent.Workspace;

namespace Packet.Agent.Steps;

/// <summary>
/// Step 6: the user's boot hooks, in this order: <c>/workspace/setup.sh</c> (every boot);
/// <c>/workspace/.packet/first-boot.d/*</c> (until each has succeeded once with its current
/// content); <c>/workspace/.packet/boot.d/*</c> (every boot); and <c>/workspace/requirements.txt</c>
/// installed into <c>/workspace/venv</c> when it changed. Hooks run as the home's account
/// (<see cref="HomeAccount"/>: from the image or --user, never from the volume's owners), and only
/// when that account owns the persisted home: a user of the volume who could rename another folder
/// to <c>home</c> must not choose whom hooks run as. Run as root (a root home), a hook runs only
/// when no other account could have changed it or any folder above it, and its PATH and
/// PYTHONPATH keep only folders no other account can change (<see cref="ProgramTrust"/>). Each
/// hook has a time limit and its own log file. A failed or refused hook is a warning; the others
/// still run. The step decides which hooks run by looking (HooksStep.cs), as whom and whether they may
/// (HooksStep.Accounts.cs), and runs them (HooksStep.Run.cs).
/// </summary>
public sealed partial class HooksStep(IPosix posix, IHookRunner runner, CommandResolver resolver, ProgramTrust trust, ILogger logger, Func<IDictionary> environment) : IBootStep<HomeState?, NoValue>
{

    private const int MaxHookBytes = 16 * 1024 * 1024;
    private const int MaxHookNameBytes = 200;

    /// <summary>What a hook is: the setup script, a folder hook (first-boot ones carry their content's hash), or the venv and pip of requirements.txt.</summary>
    private enum HookKind
    {
        Setup,
        FirstBoot,
        Boot,
        Venv,
        Requirements,
    }

    public StepId Id => StepId.Hooks;

    public FailurePolicy Policy => FailurePolicy.WarnAndContinue;

    public StepPlan<NoValue> Decide(HomeState? input, BootSettings settings)
    {
        if (input is null)
        {
            return StepPlan.Settled<NoValue>(StepResult.Skipped("no workspace"), default);
        }

        var workspace = input.Workspace;
        try
        {
            if (Identity(workspace, settings.Account) is not { } identity)
            {
                return StepPlan.Settled<NoValue>(StepResult.Problem(NotRun(workspace, settings.Account)), default);
            }

            var refuse = identity.Uid == 0 ? trust.ForCommand : null;
            using var shared = StateFolder.TryOpenShared(posix, workspace);
            using var records = settings.Account.TryOpenRecords(posix, workspace);
            // Read only when a first-boot hook or requirements.txt asks for it.
            var hookState = new Lazy<HookState>(() => records is null ? new HookState() : HookState.Load(records));
            var hooks = new List<PlannedHook>();
            var notes = new List<string>();
            var refused = new List<string>();
            PlanSetupScript(workspace, identity, hooks, refuse, refused);
            foreach (string folder in new[] { WorkspaceLayout.FirstBootHooks, WorkspaceLayout.BootHooks })
            {
                using var opened = shared?.TryOpenDirectory(folder);
                PlanFolder(opened, folder, identity, hookState, hooks, notes, refuse, refused);
            }

            PlanRequirements(workspace, identity, hookState, hooks, notes, refused);
            var folders = new[] { WorkspaceLayout.FirstBootHooks, WorkspaceLayout.BootHooks }.Where(folder => shared?.Exists(folder) != true).ToArray();
            if (hooks.Count == 0 && notes.Count == 0 && folders.Length == 0 && refused.Count == 0)
            {
                return StepPlan.Settled<NoValue>(StepResult.Skipped("no hooks to run"), default);
            }

            string own = WorkspaceLayout.AccountState(posix.EffectiveUserId);
            var where = new HookPlaces(workspace, posix.EffectiveUserId, identity, shared is null, !workspace.Exists(own), workspace.Exists(Path.Join(own, WorkspaceLayout.Logs)));
            return new HooksPlan(where, hooks, notes, refused, hookState.IsValueCreated ? hookState.Value : null, folders);
        }
        catch (IOException e)
        {
            return StepPlan.Settled<NoValue>(StepResult.Problem($"{e.Message}; hooks were not run"), default);
        }
    }

    public (StepResult Result, NoValue Value) Apply(StepPlan<NoValue> plan, BootSettings settings) =>
        plan is HooksPlan hooks ? RunAll(hooks, settings) : (plan.Preview, plan.Planned);

    /// <summary>Editor and package-manager leftovers, and dotfiles: run-parts skips them too.</summary>
    private static bool IsLeftover(string name) =>
        name.StartsWith('.') || name.EndsWith('~') || name.EndsWith(".bak", StringComparison.Ordinal) || name.Contains(".dpkg-", StringComparison.Ordinal);

    private static bool IsExecutable(in Stat stat) =>
        (stat.st_mode & (FilePermissions.S_IXUSR | FilePermissions.S_IXGRP | FilePermissions.S_IXOTH)) != 0;

    private void PlanSetupScript(DirectoryHandle workspace, HookIdentity identity, List<PlannedHook> hooks, Func<string, string?>? refuse, List<string> refused)
    {
        if (workspace.LStat(WorkspaceLayout.SetupScript, out var script) < 0 || (script.st_mode & FilePermissions.S_IFMT) != FilePermissions.S_IFREG)
        {
            return;
        }

        string path = workspace.PathOf(WorkspaceLayout.SetupScript);
        if (refuse?.Invoke(path) is { } refusal)
        {
            refused.Add(NotRunAsRoot(WorkspaceLayout.SetupScript, refusal));
            return;
        }

        if (NotTheAccounts(NativeName.Display(path), path, script, identity) is { } another)
        {
            refused.Add(another);
            return;
        }

        // The old advice was "bash /workspace/setup.sh": a script without its execute bit still runs.
        var (program, arguments) = IsExecutable(script)
            ? (path, Array.Empty<string>())
            : (resolver.Resolve("/bin/bash", null).Found ? "/bin/bash" : "/bin/sh", new[] { path });
        hooks.Add(new PlannedHook(HookKind.Setup, WorkspaceLayout.SetupScript, program, arguments));
    }

    private void PlanFolder(DirectoryHandle? folder, string folderName, HookIdentity identity, Lazy<HookState> hookState, List<PlannedHook> hooks, List<string> notes, Func<string, string?>? refuse, List<string> refused)
    {
        if (folder is null)
        {
            return;
        }

        PosixException.Check(posix.FStat(folder.Fd, out var folderStat), "stat", folder.Path);
        if (NotTheAccounts($"the hooks in {NativeName.Display(folder.Path)}", folder.Path, folderStat, identity) is { } foreign)
        {
            refused.Add(foreign);
            return;
        }

        var names = new List<DirectoryEntry>();
        PosixException.Check(new DirectoryReader(posix, 16 * 1024).ReadAll(folder.Fd, names.Add), "list", folder.Path);
        foreach (string name in names.Select(n => n.Name).Order(StringComparer.Ordinal))
        {
            string hookName = $"{folderName}/{name}";
            if (IsLeftover(name))
            {
                continue;
            }

            var (note, refusal) = WhyNotRun(folder, name, hookName, identity, refuse);
            if (note is not null || refusal is not null)
            {
                notes.AddRange(note is null ? [] : [note]);
                refused.AddRange(refusal is null ? [] : [refusal]);
                continue;
            }

            if (folderName == WorkspaceLayout.FirstBootHooks)
            {
                string hash = HookState.Hash(folder.ReadFile(name, MaxHookBytes, out _) ?? []);
                if (hookState.Value.FirstBootSucceeded.GetValueOrDefault(name) != hash)
                {
                    hooks.Add(new PlannedHook(HookKind.FirstBoot, hookName, folder.PathOf(name), [], name, hash));
                }

                continue; // succeeded once with this content
            }

            hooks.Add(new PlannedHook(HookKind.Boot, hookName, folder.PathOf(name), []));
        }
    }

    private void PlanRequirements(DirectoryHandle workspace, HookIdentity identity, Lazy<HookState> hookState, List<PlannedHook> hooks, List<string> notes, List<string> refused)
    {
        byte[]? requirements = workspace.ReadFile(WorkspaceLayout.Requirements, MaxHookBytes, out _);
        if (requirements is null)
        {
            return;
        }

        string hash = HookState.Hash(requirements);
        string venv = workspace.PathOf(WorkspaceLayout.Venv);
        bool venvReady = workspace.Exists(Path.Join(WorkspaceLayout.Venv, "bin", "python"));
        if (venvReady && hookState.Value.RequirementsInstalled == hash)
        {
            notes.Add($"{workspace.PathOf(WorkspaceLayout.Requirements)} unchanged since the last install; pip not run");
            return;
        }

        // Root's pip reads requirements.txt by path (a line of it can run anything: -e, --index-url) and runs what
        // the venv holds (site-packages, .pth files): the file, the folders above it and every entry of the venv,
        // made or half-made, must be root's alone. A venv root makes itself is made in a workspace no one else can write.
        if (identity.Uid == 0 && trust.ForCommand is { } refuse
            && (refuse(workspace.PathOf(WorkspaceLayout.Requirements))
                ?? (workspace.LStat(WorkspaceLayout.Venv, out _) >= 0 ? SafePath.RefusalBelow(posix, venv, TrustedOwners.Of(posix)) : null)) is { } untrusted)
        {
            refused.Add(NotRunAsRoot($"pip install -r {WorkspaceLayout.Requirements}", untrusted));
            return;
        }

        if (!venvReady)
        {
            var python = resolver.Resolve("python3", HookEnvironment(workspace, identity).GetValueOrDefault("PATH"), identity.Uid == 0 ? trust.ForImageProgram(workspace.Path) : null);
            if (!python.Found)
            {
                hooks.Add(new PlannedHook(HookKind.Venv, "venv", string.Empty, [], Failure: $"{workspace.PathOf(WorkspaceLayout.Requirements)} is there but python3 is not ({python.Failure}); nothing was installed"));
                return;
            }

            // --system-site-packages: the image's CUDA-matched packages (torch, say) stay visible.
            hooks.Add(new PlannedHook(HookKind.Venv, "venv", python.Path!, ["-m", "venv", "--system-site-packages", venv]));
        }

        hooks.Add(new PlannedHook(HookKind.Requirements, WorkspaceLayout.Requirements, Path.Join(venv, "bin", "python"), ["-m", "pip", "install", "--requirement", workspace.PathOf(WorkspaceLayout.Requirements)], Hash: hash));
    }

    /// <summary>One hook to run: what it is, its name in logs, the program and arguments; a first-boot hook's name and content hash; or why it cannot run.</summary>
    private sealed record PlannedHook(HookKind Kind, string Name, string Program, IReadOnlyList<string> Arguments, string? FolderName = null, string? Hash = null, string? Failure = null)
    {
        public string Describe => Kind switch
        {
            HookKind.Venv => "create the venv",
            HookKind.Requirements => $"pip install -r {WorkspaceLayout.Requirements}",
            _ => NativeName.Display(Name),
        };

        public string LogName => Name.Replace('/', '-') + ".log";
    }

    /// <summary>Where the hooks step works: the workspace, the agent's uid (whose state folder keeps the logs), the account hooks run as, and what is there already.</summary>
    private sealed record HookPlaces(DirectoryHandle Workspace, uint Agent, HookIdentity Identity, bool StateMissing, bool OwnMissing, bool LogsThere)
    {
        /// <summary>The agent's own state folder, where its logs go.</summary>
        public string Own => Workspace.PathOf(WorkspaceLayout.AccountState(Agent));

        public string State => Workspace.PathOf(WorkspaceLayout.State);

        /// <summary>The agent's own logs folder.</summary>
        public string Logs => Workspace.PathOf(Path.Join(WorkspaceLayout.AccountState(Agent), WorkspaceLayout.Logs));

        /// <summary>The account's record of what succeeded.</summary>
        public string Record => Workspace.PathOf(Path.Join(WorkspaceLayout.AccountState(Identity.Uid), WorkspaceLayout.HookState));
    }

    /// <summary>
    /// What the hooks step will do: the hook folders it makes for the home's account, then each hook
    /// in order with its log, and the record of what succeeded; the notes it logs first, and the
    /// hooks a root agent refuses to run.
    /// </summary>
    private sealed class HooksPlan(HookPlaces where, IReadOnlyList<PlannedHook> hooks, IReadOnlyList<string> notes, IReadOnlyList<string> refused, HookState? hookState, IReadOnlyList<string> folders)
        : StepPlan<NoValue>(PreviewOf(where, hooks, folders, refused), default, ChangesOf(where, hooks, folders))
    {
        public DirectoryHandle Workspace => where.Workspace;

        public HookIdentity Identity => where.Identity;

        public IReadOnlyList<PlannedHook> Hooks => hooks;

        public IReadOnlyList<string> Notes => notes;

        /// <summary>Hooks a root agent does not run, each with why: the step's warning.</summary>
        public IReadOnlyList<string> Refused => refused;

        public HookState? State => hookState;

        public string? FoldersMade => folders.Count == 0 ? null : $"{string.Join(" and ", folders.Select(f => Path.Join(where.State, f)))} for uid {where.Identity.Uid}";

        private static StepResult PreviewOf(HookPlaces where, IReadOnlyList<PlannedHook> hooks, IReadOnlyList<string> folders, IReadOnlyList<string> refused)
        {
            string create = folders.Count == 0 ? string.Empty
                : $"{(hooks.Count == 0 ? "; " : ", and ")}would create {string.Join(" and ", folders.Select(f => Path.Join(where.State, f)))} for uid {where.Identity.Uid}";
            string run = hooks.Count == 0 ? "no hooks to run" : $"would run: {string.Join(", ", hooks.Select(h => h.Describe))}";
            return refused.Count > 0 ? StepResult.Problem($"{run}{create}{string.Concat(refused.Select(r => $"; {r}"))}")
                : hooks.Count == 0 ? StepResult.Skipped($"{run}{create}")
                : StepResult.Ok($"{run}{create}");
        }

        private static List<PlannedChange> ChangesOf(HookPlaces where, IReadOnlyList<PlannedHook> hooks, IReadOnlyList<string> folders)
        {
            var changes = new List<PlannedChange>();
            if (where.StateMissing)
            {
                changes.Add(PlannedChange.CreateDirectory(where.State));
            }

            changes.AddRange(folders.Select(folder => PlannedChange.CreateDirectory(Path.Join(where.State, folder), $"for uid {where.Identity.Uid}")));
            if (where.OwnMissing && where.Agent != 0)
            {
                changes.Add(PlannedChange.CreateDirectory(where.Own, "this user's state folder"));
            }

            var runs = hooks.Where(h => h.Failure is null).ToList();
            if (runs.Count > 0 && !where.LogsThere)
            {
                changes.Add(PlannedChange.CreateDirectory(where.Logs));
            }

            foreach (var hook in runs)
            {
                changes.Add(PlannedChange.WriteFile(Path.Join(where.Logs, hook.LogName)));
                changes.Add(PlannedChange.Run(hook.Program, $"{hook.Describe}, as uid {where.Identity.Uid}"));
            }

            if (runs.Any(h => h.Kind is HookKind.FirstBoot or HookKind.Requirements))
            {
                changes.Add(PlannedChange.WriteFile(where.Record, "when such a hook succeeds"));
            }

            return changes;
        }
    }
}
