using Packet.Agent.Copy;
using Xunit;

namespace Packet.Agent.Tests;

public sealed class ImageManifestTests
{
    [Theory]
    [InlineData("plain/path.txt")]
    [InlineData("tab\there/and\nnewline")]
    [InlineData("back\\slash")]
    [InlineData("bad-\0\u00ff-\0\u00c0")]
    public void An_entry_survives_a_round_trip_through_its_line_whatever_its_name(string path)
    {
        var entry = new ManifestEntry(path, ManifestEntry.File, 42, 1_600_000_000, 123_456_789, "abc123");

        string line = ImageManifest.Format(entry);

        Assert.DoesNotContain('\n', line);
        Assert.Equal(entry, ImageManifest.Parse(line));
    }

    [Fact]
    public void Paths_are_ordered_as_a_depth_first_walk_with_sorted_names_visits_them()
    {
        string[] walk = ["a", "a/b", "a/b/c", "a/b-x", "a/c", "b"];

        var sorted = walk.Reverse().Order(Comparer<string>.Create(ImageManifest.ComparePaths)).ToArray();

        Assert.Equal(walk, sorted);
        Assert.True(string.CompareOrdinal("a/b-x", "a/b/c") < 0, "plain string order differs: that is why the comparison is by component");
    }

    [Fact]
    public void Small_files_compare_by_content_large_ones_by_size_and_time()
    {
        var small = new ManifestEntry("f", ManifestEntry.File, 10, 1, 0, "h1");

        Assert.True(small.SameAs(small with { MtimeSeconds = 99 }));
        Assert.False(small.SameAs(small with { Hash = "h2" }));
        var large = new ManifestEntry("f", ManifestEntry.File, 10L << 30, 1, 0, null);
        Assert.True(large.SameAs(large with { Path = "g" }));
        Assert.False(large.SameAs(large with { MtimeNanoseconds = 1 }));
    }

    [Fact]
    public void The_header_carries_the_image_identity() =>
        Assert.Equal("version:2026.11", ImageManifest.ReadIdentity(ImageManifest.Header("version:2026.11")));
}
