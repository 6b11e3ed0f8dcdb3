using System.Text;
using Microsoft.Extensions.Logging;
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
/// Before a first seed (a dry run), the <c>.bashrc</c> it plans for is the one the seed will bring.
/// </summary>
public sealed partial class ShellProfileStep(IPosix posix, ILogger logger) : IBootStep<HomeState, NoValue>
{
    private const int MaxProfileBytes = 1024 * 1024;
    private const Mono.Unix.Native.FilePermissions NewProfileMode = Mono.Unix.Native.FilePermissions.S_IRUSR | Mono.Unix.Native.FilePermissions.S_IWUSR | Mono.Unix.Native.FilePermissions.S_IRGRP | Mono.Unix.Native.FilePermissions.S_IROTH;

    public string Name => "profile";

    public int Number => 4;

    public FailurePolicy Policy => FailurePolicy.WarnAndContinue;

    public StepPlan<NoValue> Decide(HomeState input, BootSettings settings)
    {
        if (!input.Ready)
        {
            return StepPlan.Settled<NoValue>(StepResult.Skipped("the home is not seeded yet; the PATH block is added once it is"), default);
        }

        var options = settings.Options;
        var workspace = input.Workspace;
        DirectoryHandle? home = null;
        HomeFile? profile = null;
        try
        {
            home = workspace.TryOpenDirectory(WorkspaceLayout.Home) ?? DirectoryHandle.Open(posix, options.Home);
            PosixException.Check(posix.FStat(home.Fd, out var homeStat), "stat", home.Path);
            var owner = (homeStat.st_uid, homeStat.st_gid);
            profile = LinkInsideHome.Resolve(home, WorkspaceLayout.ShellProfile, options.Home);
            byte[]? current = profile.Directory.ReadFile(profile.Name, MaxProfileBytes, out var profileStat);
            string text = current is null ? string.Empty : Encoding.UTF8.GetString(current);
            var variables = WorkspaceEnvironment.For(workspace.Path, workspace.Exists);
            string banner = workspace.PathOf(Path.Join(WorkspaceLayout.State, BootReportWriter.BannerFile));
            string updated = ManagedBlock.Apply(text, variables, banner);
            string shown = Path.Join(workspace.Path, WorkspaceLayout.Home, WorkspaceLayout.ShellProfile);
            string target = Path.Join(workspace.Path, WorkspaceLayout.Home, Path.GetRelativePath(home.Path, profile.Path));
            string profilePath = target == shown ? shown : $"{shown} (a link to {target})";
            bool blockChanges = !ReferenceEquals(updated, text);
            if (blockChanges && current is not null && !IsValidUtf8(current))
            {
                return Dispose(StepPlan.Settled<NoValue>(StepResult.Problem($"{profilePath} is not UTF-8 text; left as it is. Add the block yourself:\n{ManagedBlock.Render(variables, banner)}"), default));
            }

            bool binMissing = !workspace.Exists(WorkspaceLayout.Bin);
            if (!binMissing)
            {
                workspace.OpenDirectory(WorkspaceLayout.Bin).Dispose(); // a symlink planted at bin is refused here, with the reason
            }

            bool stateToOwner = StateNeedsOwner(workspace, owner);
            string names = string.Join(", ", variables.Select(v => v.Name).Distinct());
            string block = !blockChanges ? $"{profilePath} already has the workspace block"
                : current is null ? $"created {profilePath} with the workspace block ({names})"
                : $"updated the workspace block in {profilePath} ({names})";
            if (!blockChanges && !binMissing && !stateToOwner)
            {
                return Dispose(StepPlan.Settled<NoValue>(StepResult.Ok(block), default));
            }

            var preview = new List<string>();
            if (binMissing)
            {
                preview.Add($"would create {workspace.PathOf(WorkspaceLayout.Bin)}");
            }

            preview.Add(blockChanges ? $"would {(current is null ? "create" : "update")} {profilePath} with the workspace block ({names})" : block);
            var (uid, gid, mode) = current is null
                ? (owner.st_uid, owner.st_gid, NewProfileMode)
                : (profileStat.st_uid, profileStat.st_gid, profileStat.st_mode & Mono.Unix.Native.FilePermissions.ALLPERMS);
            var chosen = profile;
            var opened = home;
            profile = null;
            home = null;
            return StepPlan.ToApply<NoValue>(
                StepResult.Ok(string.Join("; ", preview)),
                default,
                () =>
                {
                    try
                    {
                        if (binMissing)
                        {
                            using (workspace.CreateDirectory(WorkspaceLayout.Bin, WorkspaceLayout.DirectoryMode, owner))
                            {
                                Log.CreatedBin(logger, workspace.PathOf(WorkspaceLayout.Bin));
                            }
                        }

                        if (stateToOwner)
                        {
                            GiveStateToHomeOwner(workspace, owner);
                        }

                        if (blockChanges)
                        {
                            // A new .bashrc belongs to the home's owner; an existing one keeps its own owner and mode.
                            chosen.Directory.ReplaceFile(chosen.Name, Encoding.UTF8.GetBytes(updated), uid, gid, mode);
                        }

                        return (StepResult.Ok(block), default);
                    }
                    catch (IOException e)
                    {
                        return (StepResult.Problem($"{e.Message}; the PATH block was not written"), default);
                    }
                },
                new Holds(chosen, opened));

            StepPlan<NoValue> Dispose(StepPlan<NoValue> settled)
            {
                profile?.Dispose();
                home?.Dispose();
                return settled;
            }
        }
        catch (IOException e)
        {
            profile?.Dispose();
            home?.Dispose();
            return StepPlan.Settled<NoValue>(StepResult.Problem($"{e.Message}; the PATH block was not written"), default);
        }
    }

    /// <summary>
    /// The agent's state folder belongs to the home's owner: root's for a root home, the user's in a
    /// non-root pod, where the agent of the main container runs as that user after a root init
    /// container seeded the home, and must keep its report, lock and hook logs. Files a root agent
    /// left inside stay root's; the user's agent replaces them by rename, which the folder allows.
    /// </summary>
    private bool StateNeedsOwner(DirectoryHandle workspace, (uint Uid, uint Gid) owner) =>
        posix.EffectiveUserId == 0 && owner.Uid != 0
        && (workspace.LStat(WorkspaceLayout.State, out var state) < 0 || state.st_uid != owner.Uid || state.st_gid != owner.Gid);

    private void GiveStateToHomeOwner(DirectoryHandle workspace, (uint Uid, uint Gid) owner)
    {
        using var state = workspace.CreateDirectory(WorkspaceLayout.State, WorkspaceLayout.DirectoryMode, owner);
        if (posix.FStat(state.Fd, out var current) >= 0 && (current.st_uid != owner.Uid || current.st_gid != owner.Gid))
        {
            PosixException.Check(posix.FChown(state.Fd, owner.Uid, owner.Gid), "give to the home's owner", state.Path);
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

    private sealed class Holds(IDisposable first, IDisposable second) : IDisposable
    {
        public void Dispose()
        {
            first.Dispose();
            second.Dispose();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "created {Bin}")]
        public static partial void CreatedBin(ILogger logger, string bin);
    }
}
