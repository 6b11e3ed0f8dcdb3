using System.Collections;
using System.IO.Abstractions;
using Microsoft.Extensions.Logging;
using Mono.Unix.Native;
using Packet.Agent.Boot;
using Packet.Agent.Exec;
using Packet.Agent.Hooks;
using Packet.Agent.Posix;
using Packet.Agent.Profile;
using Packet.Agent.Workspace;

namespace Packet.Agent.Steps;

/// <summary>
/// Step 6: the user's boot hooks, in this order: <c>/workspace/setup.sh</c> (every boot);
/// <c>/workspace/.packet/first-boot.d/*</c> (until each has succeeded once with its current
/// content); <c>/workspace/.packet/boot.d/*</c> (every boot); and <c>/workspace/requirements.txt</c>
/// installed into <c>/workspace/venv</c> when it changed. Hooks run as the owner of the persisted
/// home (root only when root owns it: the volume is writable by that user, so running its scripts
/// as root would hand root to them), each with a time limit and its own log file. A failed hook is
/// a warning; the others still run.
/// </summary>
public sealed partial class HooksStep : IBootStep
{
    public const string SetupScript = "setup.sh";
    public const string Requirements = "requirements.txt";
    public const string FirstBootFolder = "first-boot.d";
    public const string BootFolder = "boot.d";
    public const string LogsFolder = "logs";

    private const FilePermissions FolderMode = FilePermissions.S_IRWXU | FilePermissions.S_IRGRP | FilePermissions.S_IXGRP | FilePermissions.S_IROTH | FilePermissions.S_IXOTH;
    private const FilePermissions LogMode = FilePermissions.S_IRUSR | FilePermissions.S_IWUSR | FilePermissions.S_IRGRP | FilePermissions.S_IROTH;
    private const int MaxHookBytes = 16 * 1024 * 1024;

    private readonly IPosix _posix;
    private readonly IFileSystem _fileSystem;
    private readonly IHookRunner _runner;
    private readonly CommandResolver _resolver;
    private readonly ILogger _logger;
    private readonly Func<IDictionary> _environment;

    public HooksStep(IPosix posix, IFileSystem fileSystem, IHookRunner runner, CommandResolver resolver, ILogger logger, Func<IDictionary> environment)
    {
        _posix = posix;
        _fileSystem = fileSystem;
        _runner = runner;
        _resolver = resolver;
        _logger = logger;
        _environment = environment;
    }

    public string Name => "hooks";

    public int Number => 6;

    public FailurePolicy Policy => FailurePolicy.WarnAndContinue;

    public StepResult Run(BootContext context)
    {
        if (!context.PersistenceAvailable)
        {
            return StepResult.Skipped("no workspace");
        }

        if (context.Options.DryRun)
        {
            return Plan(context);
        }

        try
        {
            using var workspace = DirectoryHandle.Open(_posix, context.Options.Workspace);
            var identity = Owner(workspace);
            using var state = workspace.CreateDirectory(WorkspaceLayout.State, FolderMode);
            var session = new Session(this, context, workspace, state, identity);
            return session.RunAll();
        }
        catch (IOException e)
        {
            return StepResult.Problem($"{e.Message}; hooks were not run");
        }
    }

    /// <summary>The dry run: which hooks would run, without creating the folders or running anything.</summary>
    private StepResult Plan(BootContext context)
    {
        try
        {
            using var workspace = DirectoryHandle.Open(_posix, context.Options.Workspace);
            using var state = workspace.TryOpenDirectory(WorkspaceLayout.State);
            var hookState = state is null ? new HookState() : HookState.Load(state);
            var planned = new List<string>();
            if (workspace.LStat(SetupScript, out var setup) >= 0 && (setup.st_mode & FilePermissions.S_IFMT) == FilePermissions.S_IFREG)
            {
                planned.Add(SetupScript);
            }

            foreach (string folderName in new[] { FirstBootFolder, BootFolder })
            {
                using var folder = state?.TryOpenDirectory(folderName);
                if (folder is null)
                {
                    continue;
                }

                var names = new List<DirectoryEntry>();
                new DirectoryReader(_posix, 16 * 1024).ReadAll(folder.Fd, names.Add);
                foreach (string name in names.Select(n => n.Name).Order(StringComparer.Ordinal))
                {
                    bool runnable = !IsLeftover(name) && IsRunnable(folder, name);
                    bool done = folderName == FirstBootFolder && runnable
                        && hookState.FirstBootSucceeded.GetValueOrDefault(name) == HookState.Hash(folder.ReadFile(name, MaxHookBytes, out _) ?? []);
                    if (runnable && !done)
                    {
                        planned.Add(NativeName.Display($"{folderName}/{name}"));
                    }
                }
            }

            if (workspace.ReadFile(Requirements, MaxHookBytes, out _) is { } requirements
                && (hookState.RequirementsInstalled != HookState.Hash(requirements) || !_fileSystem.File.Exists(Path.Join(context.Options.Workspace, "venv", "bin", "python"))))
            {
                planned.Add($"pip install -r {Requirements} into {Path.Join(context.Options.Workspace, "venv")}");
            }

            return planned.Count == 0 ? StepResult.Skipped("no hooks to run") : StepResult.Ok($"would run: {string.Join(", ", planned)}");
        }
        catch (IOException e)
        {
            return StepResult.Problem($"{e.Message}; hooks could not be planned");
        }
    }

    /// <summary>Editor and package-manager leftovers, and dotfiles: run-parts skips them too.</summary>
    private static bool IsLeftover(string name) =>
        name.StartsWith('.') || name.EndsWith('~') || name.EndsWith(".bak", StringComparison.Ordinal) || name.Contains(".dpkg-", StringComparison.Ordinal);

    /// <summary>Only executable regular files run (a symlink is not followed).</summary>
    private static bool IsRunnable(DirectoryHandle folder, string name) =>
        folder.LStat(name, out var stat) >= 0 && (stat.st_mode & FilePermissions.S_IFMT) == FilePermissions.S_IFREG && IsExecutable(stat);

    private static bool IsExecutable(in Stat stat) =>
        (stat.st_mode & (FilePermissions.S_IXUSR | FilePermissions.S_IXGRP | FilePermissions.S_IXOTH)) != 0;

    /// <summary>The owner of the persisted home, or of the workspace before there is a home; the agent itself when it cannot switch users.</summary>
    private HookIdentity Owner(DirectoryHandle workspace)
    {
        if (workspace.LStat(WorkspaceLayout.Home, out var owner) < 0 || (owner.st_mode & FilePermissions.S_IFMT) != FilePermissions.S_IFDIR)
        {
            PosixException.Check(_posix.FStat(workspace.Fd, out owner), "stat", workspace.Path);
        }

        return _posix.EffectiveUserId == 0
            ? new HookIdentity(owner.st_uid, owner.st_gid)
            : new HookIdentity(_posix.EffectiveUserId, _posix.EffectiveGroupId);
    }

    /// <summary>One boot's run of the hooks: what ran, what failed, the state to remember.</summary>
    private sealed class Session
    {
        private readonly HooksStep _step;
        private readonly BootContext _context;
        private readonly DirectoryHandle _workspace;
        private readonly DirectoryHandle _state;
        private readonly HookIdentity _identity;
        private readonly Lazy<Dictionary<string, string>> _environment;
        private readonly List<string> _failures = [];
        private DirectoryHandle? _logs;
        private int _ran;

        public Session(HooksStep step, BootContext context, DirectoryHandle workspace, DirectoryHandle state, HookIdentity identity)
        {
            _step = step;
            _context = context;
            _workspace = workspace;
            _state = state;
            _identity = identity;
            _environment = new Lazy<Dictionary<string, string>>(HookEnvironment);
        }

        private string WorkspacePath => _context.Options.Workspace;

        public StepResult RunAll()
        {
            try
            {
                // Read only when a first-boot hook or requirements.txt may need it.
                var hookState = new Lazy<HookState>(() => HookState.Load(_state));
                RunSetupScript();
                RunFolder(FirstBootFolder, hookState, firstBootOnly: true);
                RunFolder(BootFolder, hookState, firstBootOnly: false);
                InstallRequirements(hookState);
            }
            finally
            {
                _logs?.Dispose();
            }

            if (_failures.Count > 0)
            {
                return StepResult.Problem(string.Join("; ", _failures));
            }

            return _ran == 0 ? StepResult.Skipped("no hooks to run") : StepResult.Ok($"{_ran} hook{(_ran == 1 ? string.Empty : "s")} ran");
        }

        private void RunSetupScript()
        {
            if (_workspace.LStat(SetupScript, out var script) < 0 || (script.st_mode & FilePermissions.S_IFMT) != FilePermissions.S_IFREG)
            {
                return;
            }

            string path = _workspace.PathOf(SetupScript);
            // The old advice was "bash /workspace/setup.sh": a script without its execute bit still runs.
            var (program, arguments) = IsExecutable(script)
                ? (path, Array.Empty<string>())
                : (_step._fileSystem.File.Exists("/bin/bash") ? "/bin/bash" : "/bin/sh", new[] { path });
            Run(SetupScript, program, arguments);
        }

        private void RunFolder(string folderName, Lazy<HookState> hookState, bool firstBootOnly)
        {
            // The folders belong to the home's owner, so the user can add hooks to a root-owned .packet.
            using var folder = _state.CreateDirectory(folderName, FolderMode, (_identity.Uid, _identity.Gid));
            var names = new List<DirectoryEntry>();
            PosixException.Check(new DirectoryReader(_step._posix, 16 * 1024).ReadAll(folder.Fd, names.Add), "list", folder.Path);
            foreach (string name in names.Select(n => n.Name).Order(StringComparer.Ordinal))
            {
                string hookName = $"{folderName}/{name}";
                if (_context.Stop.Requested)
                {
                    return;
                }

                if (IsLeftover(name))
                {
                    continue;
                }

                if (!IsRunnable(folder, name))
                {
                    Log.NotExecutable(_step._logger, NativeName.Display(hookName));
                    continue;
                }

                string? hash = null;
                if (firstBootOnly)
                {
                    hash = HookState.Hash(folder.ReadFile(name, MaxHookBytes, out _) ?? []);
                    if (hookState.Value.FirstBootSucceeded.GetValueOrDefault(name) == hash)
                    {
                        continue; // succeeded once with this content
                    }
                }

                if (Run(hookName, folder.PathOf(name), []) && hash is not null)
                {
                    hookState.Value.FirstBootSucceeded[name] = hash;
                    hookState.Value.Save(_state, _step._posix.EffectiveUserId, _step._posix.EffectiveGroupId);
                }
            }
        }

        private void InstallRequirements(Lazy<HookState> lazyState)
        {
            byte[]? requirements = _workspace.ReadFile(Requirements, MaxHookBytes, out _);
            if (requirements is null || _context.Stop.Requested)
            {
                return;
            }

            var hookState = lazyState.Value;
            string hash = HookState.Hash(requirements);
            string venv = Path.Join(WorkspacePath, "venv");
            string pip = Path.Join(venv, "bin", "pip");
            bool venvReady = _step._fileSystem.File.Exists(Path.Join(venv, "bin", "python"));
            if (venvReady && hookState.RequirementsInstalled == hash)
            {
                Log.RequirementsUnchanged(_step._logger, _workspace.PathOf(Requirements));
                return;
            }

            if (!venvReady)
            {
                var python = _step._resolver.Resolve("python3", _environment.Value.GetValueOrDefault("PATH"));
                if (!python.Found)
                {
                    _failures.Add($"{_workspace.PathOf(Requirements)} is there but python3 is not ({python.Failure}); nothing was installed");
                    return;
                }

                // --system-site-packages: the image's CUDA-matched packages (torch, say) stay visible.
                if (!Run("venv", python.Path!, ["-m", "venv", "--system-site-packages", venv]))
                {
                    return;
                }
            }

            if (Run(Requirements, pip, ["install", "--requirement", _workspace.PathOf(Requirements)]))
            {
                hookState.RequirementsInstalled = hash;
                hookState.Save(_state, _step._posix.EffectiveUserId, _step._posix.EffectiveGroupId);
            }
        }

        /// <summary>Runs one hook; false (and the failure noted) when it did not succeed.</summary>
        private bool Run(string hookName, string program, IReadOnlyList<string> arguments)
        {
            _logs ??= _state.CreateDirectory(LogsFolder, FolderMode);
            string logName = hookName.Replace('/', '-') + ".log";
            // Made afresh: a log a root agent left is not writable by the user's agent, but removable.
            _step._posix.UnlinkAt(_logs.Fd, logName, isDirectory: false);
            int logFd = _logs.CreateFile(logName, LogMode);
            try
            {
                string display = NativeName.Display(hookName);
                Log.Running(_step._logger, display, _identity.Uid);
                var outcome = _step._runner.Run(
                    new HookRun(hookName, program, arguments, logFd),
                    _identity,
                    _environment.Value,
                    WorkspacePath,
                    _context.Options.HookTimeout,
                    line => Log.Output(_step._logger, display, line),
                    _context.Stop.Token);
                _ran++;
                if (outcome.Succeeded)
                {
                    Log.Succeeded(_step._logger, display, Units.Duration(outcome.Duration));
                    return true;
                }

                _failures.Add($"{display} {outcome.Describe(_context.Options.HookTimeout)} (log: {_logs.PathOf(logName)})");
                return false;
            }
            finally
            {
                _step._posix.Close(logFd);
            }
        }

        private Dictionary<string, string> HookEnvironment()
        {
            var variables = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (DictionaryEntry variable in _step._environment())
            {
                variables[(string)variable.Key] = (string?)variable.Value ?? string.Empty;
            }

            variables["HOME"] = Path.Join(WorkspacePath, WorkspaceLayout.Home);
            variables["PACKET_WORKSPACE"] = WorkspacePath;
            variables["PIP_CACHE_DIR"] = Path.Join(WorkspacePath, ".cache", "pip");
            variables["PIP_DISABLE_PIP_VERSION_CHECK"] = "1";
            var fileSystem = _step._fileSystem;
            WorkspaceEnvironment.Apply(variables, WorkspaceEnvironment.For(WorkspacePath, path => fileSystem.Directory.Exists(path) || fileSystem.File.Exists(path)));
            return variables;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 6, Level = LogLevel.Information, Message = "running {Hook} as uid {Uid}")]
        public static partial void Running(ILogger logger, string hook, uint uid);

        [LoggerMessage(EventId = 6, Level = LogLevel.Information, Message = "{Hook}: {Line}")]
        public static partial void Output(ILogger logger, string hook, string line);

        [LoggerMessage(EventId = 6, Level = LogLevel.Information, Message = "{Hook} succeeded in {Duration}")]
        public static partial void Succeeded(ILogger logger, string hook, string duration);

        [LoggerMessage(EventId = 6, Level = LogLevel.Information, Message = "skipped {Hook}: not an executable regular file")]
        public static partial void NotExecutable(ILogger logger, string hook);

        [LoggerMessage(EventId = 6, Level = LogLevel.Information, Message = "{Requirements} unchanged since the last install; pip not run")]
        public static partial void RequirementsUnchanged(ILogger logger, string requirements);
    }
}
