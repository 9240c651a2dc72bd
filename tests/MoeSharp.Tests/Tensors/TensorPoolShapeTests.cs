using MoeSharp.Tensors;

namespace MoeSharp.Tests.Tensors;

/// <summary>A pool checks a shape before it allocates anything for it.</summary>
public sealed class TensorPoolShapeTests
{
    public static TheoryData<int[]> BadShapes =>
        new()
        {
            new[] { 65_536, 65_536, 8 }, // 2^35 elements: over Array.MaxLength, not a clamp to it
            new[] { 100_000, 100_000 },
            new[] { 65_536, 65_536, 65_536, 65_536 }, // 2^64: a long product wraps to 0
            new[] { 3, -1, 1 << 20 },
            new[] { -4 },
        };

    [Theory]
    [MemberData(nameof(BadShapes))]
    public void ABadShape_IsRefusedBeforeAnyStorageIsAllocated(int[] shape)
    {
        var pool = new TensorPool();
        long before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => pool.Rent(DType.Float32, shape));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal("shape", error.ParamName);
        Assert.Contains(string.Join(", ", shape), error.Message, StringComparison.Ordinal);
        // The exception and its message only: no storage for the shape (the first shape used to take 8 GiB).
        Assert.InRange(allocated, 0, 64 << 10);
        Assert.Equal(0, pool.RetainedBytes);
    }

    [Fact]
    public void EmptyAndSmallShapes_StillRent()
    {
        var pool = new TensorPool();
        Assert.Equal(0, pool.Rent(DType.Float32, 0, 5).ElementCount);
        Assert.Equal(12, pool.Rent(DType.Int64, 3, 4).ElementCount);
    }
}
