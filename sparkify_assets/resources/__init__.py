from sparkify_assets.resources.lake import Lake, LakeError, LakeResource
from sparkify_assets.resources.warehouse import Warehouse, WarehouseError, WarehouseResource

__all__ = ["Lake", "LakeError", "LakeResource", "Warehouse", "WarehouseError", "WarehouseResource"]
