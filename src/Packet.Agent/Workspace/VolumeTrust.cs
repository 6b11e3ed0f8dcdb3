using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Workspace;

/// <summary>
/// Whom the agent trusts with what it keeps on one volume. <see cref="TrustedOwners"/> says it for
/// the machine; some volumes cannot keep what it relies on, and the guard finds out by trying:
/// a volume that gives root's files to another uid (NFS root_squash gives them to the anonymous
/// uid; FAT mounted with uid=N gives everything to N) has that uid as <see cref="VolumeOwner"/>,
/// and one that keeps no modes (FAT, exFAT: every entry shows the mount's mode) has
/// <see cref="KeepsModes"/> false, so its write bits mean nothing. There the agent's state is as
/// private as the mount makes it; what root runs is still checked on its own (<see cref="SafePath"/>).
/// </summary>
public sealed record VolumeTrust(TrustedOwners Owners, uint? VolumeOwner = null, bool KeepsModes = true)
{
    public static VolumeTrust Of(IPosix posix) => new(TrustedOwners.Of(posix));

    public bool Trusts(uint uid) => Owners.Contains(uid) || uid == VolumeOwner;

    /// <summary>Whether an account that is not trusted may write an entry; on a volume without modes, no bit says so.</summary>
    public bool WritableByOthers(in Stat stat) => KeepsModes && SafePath.WritableByOthersThan(stat, Owners);

    /// <summary>Who is trusted, for messages.</summary>
    public override string ToString() => VolumeOwner is { } owner ? $"{Owners} or uid {owner} (this volume's owner of root's files)" : Owners.ToString();
}
