using Packet.Agent.Boot;
using Packet.Agent.Home;
using Packet.Agent.Workspace;

namespace Packet.Agent.Steps;

/// <summary>
/// A seeded home on a later boot: nothing to do unless the image changed (a version string, or a
/// fingerprint of the home's first two levels: no walk of the whole home). Then its changes are
/// planned by looking, and brought in under the workspace lock without overwriting anything the
/// user changed (<see cref="ImageUpgrade"/>).
/// </summary>
public sealed partial class SeedHomeStep
{
    private StepPlan<HomeState> DecideImageChanges(DirectoryHandle workspace, DirectoryHandle source, BootSettings settings)
    {
        string identity = ImageIdentity(settings.Options, source);
        using var existingState = settings.Account.TryOpenRecords(posix, workspace);
        string? recorded = existingState is null ? null : ImageUpgrade.RecordedIdentity(existingState, posix);
        if (recorded == identity)
        {
            return Settled(StepResult.Skipped("already seeded (marker present); the image's home is unchanged"), workspace, HomeStatus.Seeded);
        }

        if (recorded is null)
        {
            // A home seeded by the bash script, or by an agent before manifests: today's image is the baseline.
            return new BaselinePlan(workspace, identity, RecordsOwner(settings));
        }

        using var home = workspace.OpenDirectory(WorkspaceLayout.Home);
        var plan = Upgrader().Plan(existingState!, source, home);
        return new ImageChangesPlan(workspace, plan, recorded, identity, RecordsOwner(settings));
    }

    private (StepResult, HomeState) RecordBaseline(BaselinePlan plan, BootSettings settings) =>
        UnderLock(plan.Workspace, settings, "the baseline was not recorded this boot", (state, current) =>
        {
            Upgrader().RecordBaseline(state, current, plan.Identity);
            return StepResult.Ok("already seeded; recorded the image's home as the baseline for later upgrades");
        });

    /// <summary>The planned upgrade, under the lock; planned again when another agent changed the manifest meanwhile.</summary>
    private (StepResult, HomeState) BringInImageChanges(ImageChangesPlan plan, BootSettings settings) =>
        UnderLock(plan.Workspace, settings, "image changes not brought in this boot", (state, current) =>
        {
            string? now = ImageUpgrade.RecordedIdentity(state, posix);
            if (now == plan.Identity)
            {
                return StepResult.Skipped("already seeded; another agent brought in the image's changes meanwhile");
            }

            using var persisted = plan.Workspace.OpenDirectory(WorkspaceLayout.Home);
            bool replanned = now != plan.Recorded;
            var actions = replanned ? Upgrader().Plan(state, current, persisted) : plan.Upgrade;
            var report = Upgrader().Apply(actions, state, current, persisted, plan.Identity);
            string summary = $"{plan.Change}: {report.Summary}";
            var result = report.Failed > 0 ? StepResult.Problem(summary) : StepResult.Ok(summary);
            return replanned
                ? result with { Replanned = new Replan($"another agent changed the image manifest while this one waited for the lock; planned again: {actions.Counts.Summary}", ImageChangesPlan.ChangesOf(plan.Workspace, actions, plan.Account)) }
                : result;
        });

    /// <summary>Whose folder holds the home's records: the home's account's, else the agent's own.</summary>
    private uint RecordsOwner(BootSettings settings) => settings.Account.Account?.Uid ?? posix.EffectiveUserId;

    /// <summary>Takes the workspace lock for this step's work only, and hands the work the folder of the home's records and the image's home.</summary>
    private (StepResult, HomeState) UnderLock(DirectoryHandle workspace, BootSettings settings, string otherwise, Func<DirectoryHandle, DirectoryHandle, StepResult> work)
    {
        var seeded = new HomeState(workspace, HomeStatus.Seeded);
        try
        {
            using var shared = StateFolder.CreateShared(posix, workspace);
            using var held = Lock(shared, settings, () => { });
            if (held is null)
            {
                return (StepResult.Problem($"another agent has held {shared.PathOf(WorkspaceLayout.Lock)} for over {Units.Duration(settings.Options.LockTimeout)}; {otherwise}"), seeded);
            }

            using var records = settings.Account.CreateRecords(posix, workspace);
            using var source = DirectoryHandle.Open(posix, settings.Options.Home);
            return (work(records, source), seeded);
        }
        catch (IOException e)
        {
            return (StepResult.Problem($"{e.Message}; {otherwise}"), seeded);
        }
        catch (OperationCanceledException)
        {
            return (StepResult.Problem($"stopped by {settings.Stop.SignalName}; {otherwise}"), seeded);
        }
    }
}
