using System.Text;
using Microsoft.Extensions.Logging;
using Mono.Unix.Native;
using Packet.Agent.Boot;
using Packet.Agent.Posix;
using Packet.Agent.Profile;
using Packet.Agent.Workspace;

namespace Packet.Agent.Steps;

/// <summary>
/// Step 4: <c>/workspace/bin</c> exists (the home's account's) and the persisted <c>.bashrc</c>
/// holds exactly one managed block putting it on PATH. Writes only when something changes,
/// atomically, keeping the file's owner and mode. A <c>.bashrc</c> that a dotfile manager made a symlink gets the block in the
/// file it names, when that is inside the home (<see cref="LinkInsideHome"/>); a symlink at home or
/// bin, or one that leaves the home, is refused (the agent runs as root on a volume users can write).
/// Before a first seed (a dry run), the <c>.bashrc</c> it plans for is the one the seed will bring.
/// </summary>
public sealed partial class ShellProfileStep(IPosix posix, ILogger logger) : IBootStep<HomeState, NoValue>
{
    private const int MaxProfileBytes = 1024 * 1024;

    public StepId Id => StepId.Profile;

    public FailurePolicy Policy => FailurePolicy.WarnAndContinue;

    public StepPlan<NoValue> Decide(HomeState input, BootSettings settings)
    {
        if (!input.Ready)
        {
            return StepPlan.Settled<NoValue>(StepResult.Skipped("the home is not seeded yet; the PATH block is added once it is"), default);
        }

        var workspace = input.Workspace;
        DirectoryHandle? home = null;
        HomeFile? profile = null;
        try
        {
            home = workspace.TryOpenDirectory(WorkspaceLayout.Home) ?? DirectoryHandle.Open(posix, settings.Options.Home);
            PosixException.Check(posix.FStat(home.Fd, out var homeStat), "stat", home.Path);
            profile = LinkInsideHome.Resolve(home, WorkspaceLayout.ShellProfile, settings.Options.Home);
            var binOwner = settings.Account.Account is { } account ? (account.Uid, account.Gid) : (homeStat.st_uid, homeStat.st_gid);
            var plan = Plan(workspace, home, profile, binOwner, (homeStat.st_uid, homeStat.st_gid));
            if (plan is ProfilePlan)
            {
                (home, profile) = (null, null); // the plan holds them until it is carried out
            }

            return plan;
        }
        catch (IOException e)
        {
            return StepPlan.Settled<NoValue>(StepResult.Problem($"{e.Message}; the PATH block was not written"), default);
        }
        finally
        {
            profile?.Dispose();
            home?.Dispose();
        }
    }

    /// <summary>Creates bin, writes the block: each only as planned.</summary>
    public (StepResult Result, NoValue Value) Apply(StepPlan<NoValue> plan, BootSettings settings)
    {
        if (plan is not ProfilePlan profile)
        {
            return (plan.Preview, plan.Planned);
        }

        try
        {
            var workspace = profile.Workspace;
            if (profile.BinMissing)
            {
                using (workspace.CreateDirectory(WorkspaceLayout.Bin, FileModes.Directory, profile.Owner))
                {
                    Log.CreatedBin(logger, workspace.PathOf(WorkspaceLayout.Bin));
                }
            }

            if (profile.Updated is { } updated)
            {
                var (uid, gid, mode) = profile.FileOwnerAndMode;
                profile.File.Directory.ReplaceFile(profile.File.Name, Encoding.UTF8.GetBytes(updated), uid, gid, mode);
            }

            return (StepResult.Ok(profile.Done), default);
        }
        catch (IOException e)
        {
            return (StepResult.Problem($"{e.Message}; the PATH block was not written"), default);
        }
    }

    /// <summary>What the profile needs, found by looking: the block's text, bin.</summary>
    /// <param name="workspace">The open workspace.</param>
    /// <param name="home">The persisted home.</param>
    /// <param name="profile">The .bashrc the block goes into.</param>
    /// <param name="owner">The home's account: bin is made for it, and its banner is shown.</param>
    /// <param name="homeOwner">Whose the home is: a new .bashrc is theirs.</param>
    private static StepPlan<NoValue> Plan(DirectoryHandle workspace, DirectoryHandle home, HomeFile profile, (uint Uid, uint Gid) owner, (uint Uid, uint Gid) homeOwner)
    {
        byte[]? current = profile.Directory.ReadFile(profile.Name, MaxProfileBytes, out var profileStat);
        if (current is not null && profileStat.st_nlink > 1 && profileStat.st_uid != homeOwner.Uid)
        {
            // Another name of another account's file (a hard link the home's user made): neither its lines nor its owner are the home's to copy.
            return StepPlan.Settled<NoValue>(StepResult.Problem(
                $"{profile.Directory.PathOf(profile.Name)} has {profileStat.st_nlink} names and belongs to uid {profileStat.st_uid}, not the home's uid {homeOwner.Uid}; left as it is. "
                + $"Replace it with a file of your own (cp --remove-destination), or add the block yourself:\n{ManagedBlock.Render(WorkspaceEnvironment.For(workspace.Path, workspace.Exists), [])}"), default);
        }

        string text = current is null ? string.Empty : Encoding.UTF8.GetString(current);
        var variables = WorkspaceEnvironment.For(workspace.Path, workspace.Exists);
        // Root's boot and the home's user's agent each keep their own banner: a shell shows both.
        string[] banners = [.. new[] { 0u, owner.Uid }.Distinct().Select(uid => workspace.PathOf(Path.Join(WorkspaceLayout.AccountState(uid), WorkspaceLayout.ReportBanner)))];
        string updated = ManagedBlock.Apply(text, variables, banners);
        string target = Path.Join(workspace.Path, WorkspaceLayout.Home, Path.GetRelativePath(home.Path, profile.Path));
        string shown = Path.Join(workspace.Path, WorkspaceLayout.Home, WorkspaceLayout.ShellProfile);
        string profilePath = target == shown ? shown : $"{shown} (a link to {target})";
        bool blockChanges = !ReferenceEquals(updated, text);
        if (blockChanges && current is not null && !IsValidUtf8(current))
        {
            return StepPlan.Settled<NoValue>(StepResult.Problem($"{profilePath} is not UTF-8 text; left as it is. Add the block yourself:\n{ManagedBlock.Render(variables, banners)}"), default);
        }

        bool binMissing = !workspace.Exists(WorkspaceLayout.Bin);
        if (!binMissing)
        {
            workspace.OpenDirectory(WorkspaceLayout.Bin).Dispose(); // a symlink planted at bin is refused here, with the reason
        }

        string names = string.Join(", ", variables.Select(v => v.Name).Distinct());
        string done = !blockChanges ? $"{profilePath} already has the workspace block"
            : current is null ? $"created {profilePath} with the workspace block ({names})"
            : $"updated the workspace block in {profilePath} ({names})";
        if (!blockChanges && !binMissing)
        {
            return StepPlan.Settled<NoValue>(StepResult.Ok(done), default);
        }

        // A new .bashrc belongs to the home's owner; an existing one keeps its own owner and mode.
        var fileOwnerAndMode = current is null
            ? (homeOwner.Uid, homeOwner.Gid, FileModes.Readable)
            : (profileStat.st_uid, profileStat.st_gid, profileStat.st_mode & FilePermissions.ALLPERMS);
        var changes = new List<PlannedChange>();
        var preview = new List<string>();
        if (binMissing)
        {
            changes.Add(PlannedChange.CreateDirectory(workspace.PathOf(WorkspaceLayout.Bin), $"uid {owner.Uid}'s"));
            preview.Add($"would create {workspace.PathOf(WorkspaceLayout.Bin)}");
        }

        if (blockChanges)
        {
            changes.Add(PlannedChange.WriteFile(target));
        }

        preview.Add(blockChanges ? $"would {(current is null ? "create" : "update")} {profilePath} with the workspace block ({names})" : done);
        return new ProfilePlan(string.Join("; ", preview), changes, workspace, home, profile, owner, blockChanges ? updated : null, fileOwnerAndMode, binMissing, done);
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

    /// <summary>
    /// What the profile step will change: bin to create for the home's account, and the block's new
    /// text for the file it chose (held open, never looked up again).
    /// </summary>
    private sealed class ProfilePlan(
        string preview,
        IReadOnlyList<PlannedChange> changes,
        DirectoryHandle workspace,
        DirectoryHandle home,
        HomeFile file,
        (uint Uid, uint Gid) owner,
        string? updated,
        (uint Uid, uint Gid, FilePermissions Mode) fileOwnerAndMode,
        bool binMissing,
        string done) : StepPlan<NoValue>(StepResult.Ok(preview), default, changes)
    {
        public DirectoryHandle Workspace => workspace;

        public HomeFile File => file;

        public (uint Uid, uint Gid) Owner => owner;

        /// <summary>The profile's new text; null when the block is already right.</summary>
        public string? Updated => updated;

        public (uint Uid, uint Gid, FilePermissions Mode) FileOwnerAndMode => fileOwnerAndMode;

        public bool BinMissing => binMissing;

        /// <summary>The step's line once carried out.</summary>
        public string Done => done;

        protected override void Dispose(bool disposing)
        {
            file.Dispose();
            home.Dispose();
            base.Dispose(disposing);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = StepNumber.Profile, Level = LogLevel.Information, Message = "created {Bin}")]
        public static partial void CreatedBin(ILogger logger, string bin);
    }
}
