using Packet.Agent.Copy;

namespace Packet.Agent.Steps;

/// <summary>A progress line's figures: how far the seed is (by on-disk bytes, or by entries when there are none), how fast, and how long is left.</summary>
public readonly record struct SeedProgress(double Percent, double BytesPerSecond, TimeSpan? Left)
{
    public static SeedProgress Of(long entries, long allocatedBytes, TreeSize total, TimeSpan elapsed)
    {
        double rate = allocatedBytes / Math.Max(elapsed.TotalSeconds, 1e-3);
        double fraction = total.AllocatedBytes > 0 ? (double)allocatedBytes / total.AllocatedBytes
            : total.Entries > 0 ? (double)entries / total.Entries
            : 1;
        TimeSpan? left = rate > 0 && total.AllocatedBytes > allocatedBytes ? TimeSpan.FromSeconds((total.AllocatedBytes - allocatedBytes) / rate) : null;
        return new SeedProgress(Math.Round(Math.Clamp(fraction, 0, 1) * 100, 1), rate, left);
    }
}
