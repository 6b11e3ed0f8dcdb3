using Packet.Agent.Workspace;

namespace Packet.Agent.Home;

/// <summary>What an upgrade would do (its plan's counts) or did.</summary>
public sealed class UpgradeReport
{
    public int Added { get; set; }

    public int Updated { get; set; }

    public int KeptChanged { get; set; }

    public int LeftDeleted { get; set; }

    public int Failed { get; set; }

    public bool Changed => Added + Updated + KeptChanged > 0;

    public string Summary =>
        $"{Added} added, {Updated} updated, {KeptChanged} of your changes kept (the image's version beside each as NAME{WorkspaceLayout.ImageVersionSuffix}), {LeftDeleted} you deleted left deleted"
        + (Failed > 0 ? $", {Failed} failed" : string.Empty);
}

/// <summary>What an upgrade does to one entry of the home.</summary>
public enum UpgradeActionKind
{
    /// <summary>A directory new in the image, absent from the home: copied in whole.</summary>
    AddDirectory,

    /// <summary>An entry new in the image, absent from the home.</summary>
    Add,

    /// <summary>Changed in the image, untouched by the user: replaced.</summary>
    Update,

    /// <summary>Changed in both: the user's stays, the image's goes beside it as NAME.packet-new.</summary>
    KeepUsers,
}

/// <summary>One entry to bring in: its path in the image's home (the same in the persisted home) and what to do.</summary>
public sealed record UpgradeAction(UpgradeActionKind Kind, string Path)
{
    public string Describe => Kind switch
    {
        UpgradeActionKind.AddDirectory => $"added {Path}/ (new in the image)",
        UpgradeActionKind.Add => $"added {Path} (new in the image)",
        UpgradeActionKind.Update => $"updated {Path} (changed in the image, untouched by you)",
        _ => $"kept your {Path}; the image's version is beside it as {Path}{WorkspaceLayout.ImageVersionSuffix}",
    };
}

/// <summary>What an upgrade will do: its actions in walk order, and the counts the preview and the log give.</summary>
public sealed record UpgradePlan(IReadOnlyList<UpgradeAction> Actions, UpgradeReport Counts);
