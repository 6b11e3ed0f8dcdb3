using Packet.Agent.Boot;
using Packet.Agent.Home;
using Packet.Agent.Workspace;

namespace Packet.Agent.Steps;

/// <summary>The seed step's decisions as data, and every change carrying each out makes.</summary>
public sealed partial class SeedHomeStep
{
    /// <summary>The changes of a first seed: the lock, the staged copy moved into place (or, where a moved directory arrives empty, the copy in place), the baseline.</summary>
    private static List<PlannedChange> SeedChanges(DirectoryHandle workspace, string source, SeedPlan plan, uint agent, uint account)
    {
        string staging = workspace.PathOf(Path.Join(WorkspaceLayout.AccountState(agent), WorkspaceLayout.Staging));
        string home = workspace.PathOf(WorkspaceLayout.Home);
        var changes = LockChanges(workspace);
        changes.Add(new PlannedChange(ChangeKind.CopyTree, staging, source, "first scratch entries that show what the volume keeps, then the staged copy"));
        if (plan.InPlace)
        {
            changes.Add(new PlannedChange(ChangeKind.CopyTree, home, source, "resuming the copy in place"));
            changes.Add(PlannedChange.Remove(Path.Join(staging, WorkspaceLayout.InPlaceNote), "once the copy is complete"));
        }
        else if (plan.Merging)
        {
            changes.Add(new PlannedChange(ChangeKind.CopyTree, home, Path.Join(staging, WorkspaceLayout.Home), "only what it lacks, moved in without replacing anything"));
            changes.Add(new PlannedChange(ChangeKind.RemoveTree, Path.Join(staging, WorkspaceLayout.Home), "what was not moved in"));
        }
        else
        {
            changes.Add(new PlannedChange(ChangeKind.Move, Path.Join(staging, WorkspaceLayout.Home), home, "once the copy is complete and on disk"));
            changes.Add(new PlannedChange(ChangeKind.CopyTree, home, source, "in place instead, only on a volume where a moved directory arrives empty (fusefat)"));
        }

        changes.Add(PlannedChange.WriteFile(Manifest(workspace, account), "the image's home, the baseline for later upgrades"));
        changes.Add(PlannedChange.Remove(staging, "once empty"));
        return changes;
    }

    /// <summary>The image manifest, in the folder of the home's account.</summary>
    private static string Manifest(DirectoryHandle workspace, uint account) => workspace.PathOf(Path.Join(WorkspaceLayout.AccountState(account), WorkspaceLayout.ImageManifest));

    /// <summary>The state folder (when missing) and the workspace lock in it.</summary>
    private static List<PlannedChange> LockChanges(DirectoryHandle workspace)
    {
        var changes = new List<PlannedChange>();
        if (!workspace.Exists(WorkspaceLayout.State))
        {
            changes.Add(PlannedChange.CreateDirectory(workspace.PathOf(WorkspaceLayout.State)));
        }

        changes.Add(new PlannedChange(ChangeKind.Lock, workspace.PathOf(Path.Join(WorkspaceLayout.State, WorkspaceLayout.Lock))));
        return changes;
    }

    /// <summary>A first seed: the survey the copy starts from (surveyed again under the lock when another agent held it).</summary>
    private sealed class FirstSeedPlan(StepResult preview, DirectoryHandle workspace, HomeSeeder seeder, SeedPlan survey, IReadOnlyList<PlannedChange> changes)
        : StepPlan<HomeState>(preview, new HomeState(workspace, HomeStatus.WillBeSeeded), changes)
    {
        public DirectoryHandle Workspace => workspace;

        public HomeSeeder Seeder => seeder;

        public SeedPlan Survey => survey;
    }

    /// <summary>A seeded home without a manifest (the bash script's, or an older agent's): today's image becomes the baseline.</summary>
    private sealed class BaselinePlan(DirectoryHandle workspace, string identity, uint account) : StepPlan<HomeState>(
        StepResult.Ok("already seeded; would record the image's home as the baseline for later upgrades"),
        new HomeState(workspace, HomeStatus.Seeded),
        [.. LockChanges(workspace), PlannedChange.WriteFile(Manifest(workspace, account))])
    {
        public DirectoryHandle Workspace => workspace;

        public string Identity => identity;
    }

    /// <summary>A new image's changes to bring in: each action, and the manifest of the new image after them.</summary>
    private sealed class ImageChangesPlan(DirectoryHandle workspace, UpgradePlan upgrade, string recorded, string identity, uint account) : StepPlan<HomeState>(
        StepResult.Ok($"{ChangeOf(recorded, identity)}: would bring it in: {upgrade.Counts.Summary}"),
        new HomeState(workspace, HomeStatus.Seeded),
        ChangesOf(workspace, upgrade, account))
    {
        public DirectoryHandle Workspace => workspace;

        public UpgradePlan Upgrade => upgrade;

        public string Recorded => recorded;

        public string Identity => identity;

        public string Change => ChangeOf(recorded, identity);

        public uint Account => account;

        /// <summary>The lock, each action, the new manifest.</summary>
        public static IReadOnlyList<PlannedChange> ChangesOf(DirectoryHandle workspace, UpgradePlan upgrade, uint account) =>
            [.. LockChanges(workspace), .. upgrade.Actions.Select(action => ActionChange(workspace, action)), PlannedChange.WriteFile(Manifest(workspace, account))];

        private static string ChangeOf(string recorded, string identity) => $"the image changed ({recorded} -> {identity})";

        /// <summary>One action: the entry copied in beside its place, then renamed into it (the user's changed file keeps its place, the image's goes beside it).</summary>
        private static PlannedChange ActionChange(DirectoryHandle workspace, UpgradeAction action)
        {
            string target = workspace.PathOf(Path.Join(WorkspaceLayout.Home, action.Kind == UpgradeActionKind.KeepUsers ? action.Path + WorkspaceLayout.ImageVersionSuffix : action.Path));
            return new PlannedChange(ChangeKind.CopyTree, target, $"the image's {action.Path}", action.Kind switch
            {
                UpgradeActionKind.Update => "replacing the untouched one",
                UpgradeActionKind.KeepUsers => "beside the one you changed",
                _ => "new in the image",
            });
        }
    }
}
