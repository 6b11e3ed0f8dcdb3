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
/// installed into <c>/workspace/venv</c> when it changed. Hooks run as the owner of the persisted
/// home (root only when root owns it: the volume is writable by that user, so running its scripts
/// as root would hand root to them), each with a time limit and its own log file. A failed hook is
/// a warning; the others still run. The step decides which hooks run by looking (HooksStep.cs), and
/// runs them (HooksStep.Run.cs).
/// </summary>
public sealed partial class HooksStep(IPosix posix, IHookRunner runner, CommandResolver resolver, ILogger logger, Func<IDictionary> environment) : IBootStep<HomeState?, NoValue>
{

    private const int MaxHookBytes = 16 * 1024 * 1024;

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
            var identity = Owner(workspace);
            using var state = workspace.TryOpenDirectory(WorkspaceLayout.State);
            // Read only when a first-boot hook or requirements.txt asks for it.
            var hookState = new Lazy<HookState>(() => state is null ? new HookState() : HookState.Load(state));
            var hooks = new List<PlannedHook>();
            var notes = new List<string>();
            PlanSetupScript(workspace, hooks);
            bool foldersMissing = false;
            foreach (string folder in new[] { WorkspaceLayout.FirstBootHooks, WorkspaceLayout.BootHooks })
            {
                using var opened = state?.TryOpenDirectory(folder);
                foldersMissing |= opened is null;
                PlanFolder(opened, folder, hookState, hooks, notes);
            }

            PlanRequirements(workspace, hookState, hooks, notes);
            var folders = new[] { WorkspaceLayout.FirstBootHooks, WorkspaceLayout.BootHooks }.Where(folder => state?.Exists(folder) != true).ToArray();
            if (hooks.Count == 0 && notes.Count == 0 && folders.Length == 0)
            {
                return StepPlan.Settled<NoValue>(StepResult.Skipped("no hooks to run"), default);
            }

            return new HooksPlan(workspace, identity, hooks, notes, hookState.IsValueCreated ? hookState.Value : null, folders, state is null, Logs(state));
        }
        catch (IOException e)
        {
            return StepPlan.Settled<NoValue>(StepResult.Problem($"{e.Message}; hooks were not run"), default);
        }
    }

    public (StepResult Result, NoValue Value) Apply(StepPlan<NoValue> plan, BootSettings settings) =>
        plan is HooksPlan hooks ? RunAll(hooks, settings) : (plan.Preview, plan.Planned);

    /// <summary>Whether the logs folder is there already (a hook that runs writes its log into it).</summary>
    private static bool Logs(DirectoryHandle? state) => state?.Exists(WorkspaceLayout.Logs) == true;

    /// <summary>Editor and package-manager leftovers, and dotfiles: run-parts skips them too.</summary>
    private static bool IsLeftover(string name) =>
        name.StartsWith('.') || name.EndsWith('~') || name.EndsWith(".bak", StringComparison.Ordinal) || name.Contains(".dpkg-", StringComparison.Ordinal);

    /// <summary>Only executable regular files run (a symlink is not followed).</summary>
    private static bool IsRunnable(DirectoryHandle folder, string name) =>
        folder.LStat(name, out var stat) >= 0 && (stat.st_mode & FilePermissions.S_IFMT) == FilePermissions.S_IFREG && IsExecutable(stat);

    private static bool IsExecutable(in Stat stat) =>
        (stat.st_mode & (FilePermissions.S_IXUSR | FilePermissions.S_IXGRP | FilePermissions.S_IXOTH)) != 0;

    private void PlanSetupScript(DirectoryHandle workspace, List<PlannedHook> hooks)
    {
        if (workspace.LStat(WorkspaceLayout.SetupScript, out var script) < 0 || (script.st_mode & FilePermissions.S_IFMT) != FilePermissions.S_IFREG)
        {
            return;
        }

        string path = workspace.PathOf(WorkspaceLayout.SetupScript);
        // The old advice was "bash /workspace/setup.sh": a script without its execute bit still runs.
        var (program, arguments) = IsExecutable(script)
            ? (path, Array.Empty<string>())
            : (resolver.Resolve("/bin/bash", null).Found ? "/bin/bash" : "/bin/sh", new[] { path });
        hooks.Add(new PlannedHook(HookKind.Setup, WorkspaceLayout.SetupScript, program, arguments));
    }

    private void PlanFolder(DirectoryHandle? folder, string folderName, Lazy<HookState> hookState, List<PlannedHook> hooks, List<string> notes)
    {
        if (folder is null)
        {
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

            if (!IsRunnable(folder, name))
            {
                notes.Add($"skipped {NativeName.Display(hookName)}: not an executable regular file");
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

    private void PlanRequirements(DirectoryHandle workspace, Lazy<HookState> hookState, List<PlannedHook> hooks, List<string> notes)
    {
        byte[]? requirements = workspace.ReadFile(WorkspaceLayout.Requirements, MaxHookBytes, out _);
        if (requirements is null)
        {
            return;
        }

        string hash = HookState.Hash(requirements);
        string venv = workspace.PathOf("venv");
        bool venvReady = workspace.Exists("venv/bin/python");
        if (venvReady && hookState.Value.RequirementsInstalled == hash)
        {
            notes.Add($"{workspace.PathOf(WorkspaceLayout.Requirements)} unchanged since the last install; pip not run");
            return;
        }

        if (!venvReady)
        {
            var python = resolver.Resolve("python3", HookEnvironment(workspace).GetValueOrDefault("PATH"));
            if (!python.Found)
            {
                hooks.Add(new PlannedHook(HookKind.Venv, "venv", string.Empty, [], Failure: $"{workspace.PathOf(WorkspaceLayout.Requirements)} is there but python3 is not ({python.Failure}); nothing was installed"));
                return;
            }

            // --system-site-packages: the image's CUDA-matched packages (torch, say) stay visible.
            hooks.Add(new PlannedHook(HookKind.Venv, "venv", python.Path!, ["-m", "venv", "--system-site-packages", venv]));
        }

        hooks.Add(new PlannedHook(HookKind.Requirements, WorkspaceLayout.Requirements, Path.Join(venv, "bin", "pip"), ["install", "--requirement", workspace.PathOf(WorkspaceLayout.Requirements)], Hash: hash));
    }

    /// <summary>The owner of the persisted home, or of the workspace before there is a home; the agent itself when it cannot switch users.</summary>
    private HookIdentity Owner(DirectoryHandle workspace)
    {
        if (workspace.LStat(WorkspaceLayout.Home, out var owner) < 0 || (owner.st_mode & FilePermissions.S_IFMT) != FilePermissions.S_IFDIR)
        {
            PosixException.Check(posix.FStat(workspace.Fd, out owner), "stat", workspace.Path);
        }

        return posix.EffectiveUserId == 0
            ? new HookIdentity(owner.st_uid, owner.st_gid)
            : new HookIdentity(posix.EffectiveUserId, posix.EffectiveGroupId);
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

    /// <summary>
    /// What the hooks step will do: the hook folders it makes for the home's owner, then each hook in
    /// order with its log, and the record of what succeeded; the notes it logs first.
    /// </summary>
    private sealed class HooksPlan(
        DirectoryHandle workspace, HookIdentity identity, IReadOnlyList<PlannedHook> hooks, IReadOnlyList<string> notes, HookState? hookState, IReadOnlyList<string> folders, bool stateMissing, bool logsThere)
        : StepPlan<NoValue>(PreviewOf(workspace, identity, hooks, folders), default, ChangesOf(workspace, identity, hooks, folders, stateMissing, logsThere))
    {
        public DirectoryHandle Workspace => workspace;

        public HookIdentity Identity => identity;

        public IReadOnlyList<PlannedHook> Hooks => hooks;

        public IReadOnlyList<string> Notes => notes;

        public HookState? State => hookState;

        public string? FoldersMade => folders.Count == 0 ? null : $"{string.Join(" and ", folders.Select(f => workspace.PathOf(Path.Join(WorkspaceLayout.State, f))))} for uid {identity.Uid}";

        private static StepResult PreviewOf(DirectoryHandle workspace, HookIdentity identity, IReadOnlyList<PlannedHook> hooks, IReadOnlyList<string> folders)
        {
            string create = folders.Count == 0 ? string.Empty
                : $"{(hooks.Count == 0 ? "; " : ", and ")}would create {string.Join(" and ", folders.Select(f => workspace.PathOf(Path.Join(WorkspaceLayout.State, f))))} for uid {identity.Uid}";
            return hooks.Count == 0
                ? StepResult.Skipped($"no hooks to run{create}")
                : StepResult.Ok($"would run: {string.Join(", ", hooks.Select(h => h.Describe))}{create}");
        }

        private static List<PlannedChange> ChangesOf(DirectoryHandle workspace, HookIdentity identity, IReadOnlyList<PlannedHook> hooks, IReadOnlyList<string> folders, bool stateMissing, bool logsThere)
        {
            string state = workspace.PathOf(WorkspaceLayout.State);
            var changes = new List<PlannedChange>();
            if (stateMissing)
            {
                changes.Add(PlannedChange.CreateDirectory(state));
            }

            changes.AddRange(folders.Select(folder => PlannedChange.CreateDirectory(Path.Join(state, folder), $"for uid {identity.Uid}")));
            var runs = hooks.Where(h => h.Failure is null).ToList();
            if (runs.Count > 0 && !logsThere)
            {
                changes.Add(PlannedChange.CreateDirectory(Path.Join(state, WorkspaceLayout.Logs)));
            }

            foreach (var hook in runs)
            {
                changes.Add(PlannedChange.WriteFile(Path.Join(state, WorkspaceLayout.Logs, hook.LogName)));
                changes.Add(PlannedChange.Run(hook.Program, $"{hook.Describe}, as uid {identity.Uid}"));
            }

            if (runs.Any(h => h.Kind is HookKind.FirstBoot or HookKind.Requirements))
            {
                changes.Add(PlannedChange.WriteFile(Path.Join(state, WorkspaceLayout.HookState), "when such a hook succeeds"));
            }

            return changes;
        }
    }
}
