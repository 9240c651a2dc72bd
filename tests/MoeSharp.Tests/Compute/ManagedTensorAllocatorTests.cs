using MoeSharp.Compute;
using MoeSharp.Tensors;

namespace MoeSharp.Tests.Compute;

public sealed class ManagedTensorAllocatorTests
{
    [Fact]
    public void A_returned_tensor_s_storage_serves_the_next_rent()
    {
        var allocator = new ManagedTensorAllocator(new TensorPool());
        Tensor first = allocator.Rent(DType.Float32, 512, 64);
        Array storage = first.Storage.Array;
        allocator.Return(first);
        Assert.Same(storage, allocator.Rent(DType.Float32, 512, 64).Storage.Array);
    }

    [Fact]
    public void A_tensor_it_did_not_rent_is_left_alone()
    {
        var pool = new TensorPool();
        var allocator = new ManagedTensorAllocator(pool);
        // A caller's tensor handed back (the layer returns its input and weights): never reused under another tensor.
        var foreign = Tensor.Zeros(DType.Float32, 512, 64);
        allocator.Return(foreign);
        Assert.Equal(0, pool.RetainedBytes);
        Assert.NotSame(foreign.Storage.Array, allocator.Rent(DType.Float32, 512, 64).Storage.Array);
    }
}
