using System.IO.Abstractions;
using System.Text;
using Microsoft.Extensions.Logging;
using Mono.Unix.Native;
using Packet.Agent.Boot;
using Packet.Agent.Posix;
using Packet.Agent.Profile;
using Packet.Agent.Workspace;

namespace Packet.Agent.Steps;

/// <summary>
/// Step 4: <c>/workspace/bin</c> exists and the persisted <c>.bashrc</c> holds exactly one managed
/// block putting it on PATH. Writes only when something changes, atomically, keeping the file's
/// owner and mode. A <c>.bashrc</c> that a dotfile manager made a symlink gets the block in the
/// file it names, when that is inside the home (<see cref="LinkInsideHome"/>); a symlink at home or
/// bin, or one that leaves the home, is refused (the agent runs as root on a volume users can write).
/// </summary>
public sealed partial class ShellProfileStep(IPosix posix, IFileSystem fileSystem, ILogger logger) : IBootStep
{
    private const int MaxProfileBytes = 1024 * 1024;
    private const FilePermissions NewProfileMode = FilePermissions.S_IRUSR | FilePermissions.S_IWUSR | FilePermissions.S_IRGRP | FilePermissions.S_IROTH;
    private const FilePermissions BinMode = FilePermissions.S_IRWXU | FilePermissions.S_IRGRP | FilePermissions.S_IXGRP | FilePermissions.S_IROTH | FilePermissions.S_IXOTH;

    public string Name => "profile";

    public int Number => 4;

    public FailurePolicy Policy => FailurePolicy.WarnAndContinue;

    public StepResult Run(BootContext context)
    {
        if (!context.PersistenceAvailable)
        {
            return StepResult.Skipped("no workspace");
        }

        if (context.Options.DryRun && (context.HomeSeeded || context.SeedPlanned))
        {
            return Plan(context);
        }

        if (!context.HomeSeeded)
        {
            return StepResult.Skipped("the home is not seeded yet; the PATH block is added once it is");
        }

        try
        {
            using var workspace = DirectoryHandle.Open(posix, context.Options.Workspace);
            using var home = workspace.OpenDirectory(WorkspaceLayout.Home);
            PosixException.Check(posix.FStat(home.Fd, out var homeStat), "stat", home.Path);
            var owner = (homeStat.st_uid, homeStat.st_gid);

            string binDirectory = workspace.PathOf(WorkspaceLayout.Bin);
            bool binCreated = !workspace.Exists(WorkspaceLayout.Bin);
            using (workspace.CreateDirectory(WorkspaceLayout.Bin, BinMode, owner))
            {
                if (binCreated)
                {
                    Log.CreatedBin(logger, binDirectory);
                }
            }

            GiveStateToHomeOwner(workspace, owner);

            using var profile = LinkInsideHome.Resolve(home, WorkspaceLayout.ShellProfile, context.Options.Home);
            byte[]? current = profile.Directory.ReadFile(profile.Name, MaxProfileBytes, out var profileStat);
            string text = current is null ? string.Empty : Encoding.UTF8.GetString(current);
            var variables = WorkspaceEnvironment.For(context.Options.Workspace, path => fileSystem.Directory.Exists(path) || fileSystem.File.Exists(path));
            string banner = Path.Join(context.Options.Workspace, WorkspaceLayout.State, Operations.BootReportWriter.BannerFile);
            string updated = ManagedBlock.Apply(text, variables, banner);
            string profilePath = profile.Path == home.PathOf(WorkspaceLayout.ShellProfile)
                ? profile.Path
                : $"{home.PathOf(WorkspaceLayout.ShellProfile)} (a link to {profile.Path})";
            if (ReferenceEquals(updated, text))
            {
                return StepResult.Ok($"{profilePath} already has the workspace block");
            }

            if (current is not null && !IsValidUtf8(current))
            {
                return StepResult.Problem($"{profilePath} is not UTF-8 text; left as it is. Add the block yourself:\n{ManagedBlock.Render(variables, banner)}");
            }

            // A new .bashrc belongs to the home's owner; an existing one keeps its own owner and mode.
            var (uid, gid, mode) = current is null
                ? (owner.st_uid, owner.st_gid, NewProfileMode)
                : (profileStat.st_uid, profileStat.st_gid, profileStat.st_mode & FilePermissions.ALLPERMS);
            profile.Directory.ReplaceFile(profile.Name, Encoding.UTF8.GetBytes(updated), uid, gid, mode);
            return StepResult.Ok(current is null
                ? $"created {profilePath} with the workspace block ({string.Join(", ", variables.Select(v => v.Name).Distinct())})"
                : $"updated the workspace block in {profilePath} ({string.Join(", ", variables.Select(v => v.Name).Distinct())})");
        }
        catch (IOException e)
        {
            return StepResult.Problem($"{e.Message}; the PATH block was not written");
        }
    }

    /// <summary>
    /// The agent's state folder belongs to the home's owner: root's for a root home, the user's in a
    /// non-root pod, where the agent of the main container runs as that user after a root init
    /// container seeded the home, and must keep its report, lock and hook logs. Files a root agent
    /// left inside stay root's; the user's agent replaces them by rename, which the folder allows.
    /// </summary>
    private void GiveStateToHomeOwner(DirectoryHandle workspace, (uint Uid, uint Gid) owner)
    {
        if (posix.EffectiveUserId != 0 || owner.Uid == 0)
        {
            return;
        }

        using var state = workspace.CreateDirectory(WorkspaceLayout.State, BinMode, owner);
        if (posix.FStat(state.Fd, out var current) >= 0 && (current.st_uid != owner.Uid || current.st_gid != owner.Gid))
        {
            PosixException.Check(posix.FChown(state.Fd, owner.Uid, owner.Gid), "give to the home's owner", state.Path);
        }
    }

    /// <summary>The dry run: what would change in bin and .bashrc, reading only.</summary>
    private StepResult Plan(BootContext context)
    {
        try
        {
            using var workspace = DirectoryHandle.Open(posix, context.Options.Workspace);
            using var home = workspace.TryOpenDirectory(WorkspaceLayout.Home);
            // Before a first seed, the .bashrc to be edited is the one the seed will bring.
            using var source = home is null ? DirectoryHandle.Open(posix, context.Options.Home) : null;
            using var profileFile = LinkInsideHome.Resolve(home ?? source!, WorkspaceLayout.ShellProfile, context.Options.Home);
            byte[]? current = profileFile.Directory.ReadFile(profileFile.Name, MaxProfileBytes, out _);
            string text = current is null ? string.Empty : Encoding.UTF8.GetString(current);
            var variables = WorkspaceEnvironment.For(context.Options.Workspace, path => fileSystem.Directory.Exists(path) || fileSystem.File.Exists(path));
            string banner = Path.Join(context.Options.Workspace, WorkspaceLayout.State, Operations.BootReportWriter.BannerFile);
            string profile = Path.Join(context.Options.Workspace, WorkspaceLayout.Home, WorkspaceLayout.ShellProfile);
            var plan = new List<string>();
            if (!workspace.Exists(WorkspaceLayout.Bin))
            {
                plan.Add($"would create {workspace.PathOf(WorkspaceLayout.Bin)}");
            }

            plan.Add(ReferenceEquals(ManagedBlock.Apply(text, variables, banner), text)
                ? $"{profile} already has the workspace block"
                : $"would {(current is null ? "create" : "update")} {profile} with the workspace block ({string.Join(", ", variables.Select(v => v.Name).Distinct())})");
            return StepResult.Ok(string.Join("; ", plan));
        }
        catch (IOException e)
        {
            return StepResult.Problem($"{e.Message}; the PATH block could not be planned");
        }
    }

    private static bool IsValidUtf8(byte[] bytes)
    {
        try
        {
            _ = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
            return true;
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "created {Bin}")]
        public static partial void CreatedBin(ILogger logger, string bin);
    }
}
